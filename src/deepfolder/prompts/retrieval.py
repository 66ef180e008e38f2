"""What the index asks a chat model: to translate search queries into the sources'
language (``index.translate``) and to rank passages for a question (``index.rerank``,
``LLMReranker``). Both answers are JSON under a schema the caller passes."""

from __future__ import annotations

from collections.abc import Sequence

LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese", "ja": "Japanese", "ko": "Korean"}

TRANSLATION_PROMPT = (
    "Translate each search query below into {language}. Keep names, abbreviations, "
    "numbers and formulas as they are; translate technical terms with the standard "
    '{language} term. Reply with JSON {{"translations": [...]}}: exactly {n} strings, one '
    "per query, in order, and nothing else.\n\n{numbered}"
)


def language_name(code: str) -> str:
    """``"en"`` → ``"English"``, ``"zh-CN"`` → ``"Simplified Chinese"``; other values as given."""
    return LANGUAGE_NAMES.get(code.split("-")[0].lower(), code)


def translation_prompt(queries: Sequence[str], target_language: str) -> str:
    """Asks for all ``queries`` in ``target_language`` (a code or a language name) at once,
    numbered from 1."""
    numbered = "\n".join(f"{i}. {q}" for i, q in enumerate(queries, start=1))
    return TRANSLATION_PROMPT.format(
        language=language_name(target_language), n=len(queries), numbered=numbered
    )


RERANK_PROMPT = (
    "Rank passages by how well they answer the question. Reply with JSON "
    '{{"order": [numbers of the passages that help, best first]}} and nothing else.\n\n'
    "Question: {query}\n\n{passages}"
)


def rerank_prompt(query: str, passages: Sequence[str]) -> str:
    """Asks for the numbers of the passages that answer ``query``, best first; the
    passages are numbered from 1 in the order given."""
    numbered = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(passages, start=1))
    return RERANK_PROMPT.format(query=query, passages=numbered)
