"""Citations attached in code, sentence by sentence, from the evidence a section was
written from — never from ids a small model typed.

A sentence gets the id of the excerpt it overlaps most (character bigrams, words,
statistics), when the overlap is high enough. A Chinese sentence about an English
passage shares only names, terms and numbers with it, so for such pairs the score is
the share of the sentence's Latin terms found in the passage, and two shared terms are
needed.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from deepfolder.records import Evidence
from deepfolder.request_model import cjk_ratio
from deepfolder.validate.numbers import statistics

SENTENCE_RE = re.compile(r"[^。！？!?；\n]+[。！？!?；]?|[^.!?\n]+[.!?](?=\s|$)")


def _grams(text: str) -> set[str]:
    cjk = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    grams = {a + b for a, b in itertools.pairwise(cjk)}
    grams.update(_latin(text))
    grams.update(re.findall(r"\d+(?:\.\d+)?%?", text))
    return grams


def _latin(text: str) -> set[str]:
    """Latin words of 3+ letters and acronyms: what a Chinese sentence about an English
    source keeps of it (names, terms, model names)."""
    words = {w for w in re.findall(r"[a-z0-9]{3,}", text.lower()) if not w.isdigit()}
    return words | {a.lower() for a in re.findall(r"\b[A-Z]{2}\b", text)}


def _mostly_latin(text: str) -> bool:
    return cjk_ratio(text) < 0.2


def _overlap(sentence: str, grams: set[str], stats: set[str], ev: _EvidenceGrams) -> float:
    if ev.latin_only and not _mostly_latin(sentence):
        # A Chinese sentence about an English passage shares only its names, terms
        # and numbers; two shared terms are needed for a citation.
        own = _latin(sentence)
        score = len(own & ev.grams) / max(4, len(own))
    else:
        score = len(grams & ev.grams) / len(grams)
    if stats:
        score += 0.5 * len(stats & ev.stats) / len(stats)
    return score


CITED = re.compile(r"\[E[0-9a-f]{8}\]")


@dataclass(frozen=True, slots=True)
class _EvidenceGrams:
    evidence: Evidence
    grams: set[str]
    stats: set[str]
    latin_only: bool


def attach_citations(
    text: str, evidence: list[Evidence], threshold: float = 0.3, limit: int | None = None
) -> str:
    """Append ``[E…]`` to each sentence that overlaps an excerpt enough; code decides.

    The score is the share of the sentence's character bigrams / words found in the
    excerpt, plus half the share of its statistics (large numbers, decimals,
    percentages) that the excerpt contains — a computed table shares few words with a
    sentence that reports its numbers. With ``limit``, only that many sentences (the
    best-scoring) get a citation."""
    if not evidence:
        return text
    prepared = [
        _EvidenceGrams(
            ev, _grams(ev.segment.text), statistics(ev.segment.text), _mostly_latin(ev.segment.text)
        )
        for ev in evidence
    ]
    lines = text.splitlines()
    pieces: list[list[str]] = []
    scored: list[tuple[float, int, int, Evidence]] = []
    for li, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("#", "|", "!")):
            pieces.append([line])
            continue
        row: list[str] = []
        for m in SENTENCE_RE.finditer(line):
            sentence = m.group(0)
            grams, stats = _grams(sentence), statistics(sentence)
            if len(grams) >= 4 and not CITED.search(sentence):  # cited in code already
                best = max(prepared, key=lambda p: _overlap(sentence, grams, stats, p))
                score = _overlap(sentence, grams, stats, best)
                if score >= threshold:
                    scored.append((score, li, len(row), best.evidence))
            row.append(sentence)
        pieces.append(row)
    if limit is not None:
        scored = sorted(scored, key=lambda x: -x[0])[:limit]
    for _, li, si, ev in scored:
        sentence = pieces[li][si]
        stripped = sentence.rstrip()
        end = stripped[-1] if stripped and stripped[-1] in "。！？!?；.;" else ""
        core = stripped[:-1] if end else stripped
        pieces[li][si] = f"{core}[{ev.id}]{end}" + sentence[len(stripped) :]
    return "\n".join("".join(row) for row in pieces)


def cite_user_material(text: str, evidence: list[Evidence]) -> str:
    """When a section was given passages of the user's files but cites none, cite the
    best-matching one on the sentence it supports best (a lower bar than the general
    attachment, still from overlap — never a guess)."""
    user = [e for e in evidence if e.source.is_user_material]
    cited = set(re.findall(r"E[0-9a-f]{8}", text))
    if not user or cited & {e.id for e in user}:
        return text
    return attach_citations(text, user, threshold=0.15, limit=1)
