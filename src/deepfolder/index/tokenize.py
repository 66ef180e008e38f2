"""Chinese-aware tokenisation shared by indexing and querying.

Text is NFKC-normalised (full-width digits and letters become ASCII), lower-cased and cut
by ``rjieba`` (Rust jieba with its dictionary inside the package). Chinese is cut in
*search* mode, which emits a long word and its parts (``北京大学`` → ``北京 大学 北京大学``),
so a query that uses only part of a compound still matches. English words and digits come
out as lower-case tokens; punctuation and whitespace are dropped.

The same function runs on both sides, so what is indexed and what is searched always
agree. The lexical engine indexes the result joined by single spaces with a whitespace
tokenizer.
"""

from __future__ import annotations

import unicodedata

import rjieba


def _is_word(token: str) -> bool:
    """True when the token holds at least one letter, digit or CJK character."""
    return any(ch.isalnum() for ch in token)


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` in order (repeats kept, so term frequency is preserved)."""
    if not text:
        return []
    normalised = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for token in rjieba.cut_for_search(normalised):
        token = token.strip()
        if not token or not _is_word(token):
            continue
        if any(not (ch.isalnum() or ch in "-_.'") for ch in token):
            # A token carrying punctuation inside ("a/b", "x,y"): keep its word parts.
            parts = "".join(ch if ch.isalnum() else " " for ch in token).split()
            tokens.extend(parts)
            continue
        tokens.append(token.strip("-_.'"))
    return [t for t in tokens if t]


def tokenize_query(text: str) -> list[str]:
    """Distinct query tokens in first-seen order (a repeated word adds nothing to BM25)."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        seen.setdefault(token, None)
    return list(seen)


def segmented(text: str) -> str:
    """The text as the lexical index stores it: tokens joined by single spaces."""
    return " ".join(tokenize(text))
