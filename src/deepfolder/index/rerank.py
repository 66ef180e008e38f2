"""Reranking the top hits: a ``reranker(query, results) -> results`` callable.

No package carries a multilingual cross-encoder, so the reranker depends on the query's
script (``configured_reranker``; ``ByQueryScript``): Chinese (CJK) queries get the
model-free coverage reranker, English (Latin-script) queries the packaged English
cross-encoder (``index/cross_encoder.py``) when it is installed. The rerankers:

``CoverageReranker`` (Chinese queries' reranker, no model): reorders the first ``depth``
results by how much of the query's wording each contains, counted in units that do not
depend on word segmentation — single CJK characters and whole Latin words, and adjacent
pairs of them.
BM25 over jieba words misses when the query and the passage are cut differently, and it
ignores word order, so between two chunks of the same article (one naming the subject,
one holding the asked fact) it often prefers the wrong one; the character-pair coverage
is the classic segmentation-free signal of Chinese retrieval and separates them. Each
unit is weighted by how rare it is among the candidates (a unit every candidate has
decides nothing). Measured on CMRC 2018 in docs/benchmarks.md.

``LLMReranker(model)`` shows the model the query and the first ``top_n`` passages
(numbered, each cut to ``max_chars``) and asks for the numbers of the relevant ones, most
relevant first. Passages the model names come first in its order; the others keep their
retrieval order after them, so a bad or empty answer never loses a result. One model call
per query.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from itertools import pairwise
from typing import Protocol

from deepfolder.index.fusion import searchable_text
from deepfolder.index.script import coverage_units, units_mainly_cjk
from deepfolder.llm.base import ChatModel, ModelError
from deepfolder.prompts.retrieval import rerank_prompt
from deepfolder.records import Evidence
from deepfolder.settings import RetrievalSettings

log = logging.getLogger("deepfolder.index")


class Reranker(Protocol):
    def __call__(self, query: str, results: list[Evidence]) -> list[Evidence]: ...


def _grams(units: list[str]) -> set[str]:
    """Unigrams and adjacent pairs (punctuation between two units does not separate them)."""
    return set(units) | {a + "\x1f" + b for a, b in pairwise(units)}


class CoverageReranker:
    """Reorder the first ``depth`` results by query-unit coverage (see module docstring).

    New score = retrieval score / top retrieval score + ``weight`` × (coverage − mean
    coverage), where coverage ∈ [0, 1] is the rarity-weighted share of the query's units
    and unit pairs the passage (with its source title) contains. Only passages written
    mainly in the query's script (CJK or not) are compared: an English query's Chinese
    dense hits share no words with it by nature, so they keep their retrieval score and
    are neither buried nor lifted. Results past ``depth`` keep their order.
    """

    def __init__(self, *, depth: int = 20, weight: float = 2.0) -> None:
        self.depth = depth
        self.weight = weight

    def __call__(self, query: str, results: list[Evidence]) -> list[Evidence]:
        head, tail = results[: self.depth], results[self.depth :]
        query_units = coverage_units(query)
        wanted = _grams(query_units)
        if len(head) < 2 or not wanted:
            return results
        cjk_query = units_mainly_cjk(query_units)
        units = [coverage_units(searchable_text(ev.source, ev.segment.text)) for ev in head]
        comparable = [i for i, u in enumerate(units) if units_mainly_cjk(u) == cjk_query]
        if not comparable:
            return results
        have = {i: _grams(units[i]) for i in comparable}
        n = len(comparable)
        rarity = {}
        for gram in wanted:
            df = sum(1 for grams in have.values() if gram in grams)
            if df:
                rarity[gram] = math.log(1 + n / df)
        full = math.log(1 + n) * len(wanted)
        coverage = {
            i: sum(w for gram, w in rarity.items() if gram in grams) / full
            for i, grams in have.items()
        }
        mean = sum(coverage.values()) / n
        base = _base_scores(head)
        scored = [
            (base[i] + self.weight * (coverage[i] - mean if i in coverage else 0.0), -i, ev)
            for i, ev in enumerate(head)
        ]
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return [replace(ev, score=round(score, 6)) for score, _, ev in scored] + tail


def _base_scores(results: list[Evidence]) -> list[float]:
    """Retrieval scores scaled so the top one is 1; by rank (1/(10+r), scaled) when the
    scores are not all positive (any retriever's score works, whatever its scale)."""
    scores = [ev.score for ev in results]
    top = max(scores)
    if top > 0 and min(scores) >= 0:
        return [s / top for s in scores]
    return [11 / (10 + rank) for rank in range(1, len(results) + 1)]


ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "array", "items": {"type": "integer"}}},
    "required": ["order"],
}


class LLMReranker:
    """Let a chat model order the first ``top_n`` results (see module docstring)."""

    def __init__(self, model: ChatModel, *, top_n: int = 10, max_chars: int = 400) -> None:
        self.model = model
        self.top_n = top_n
        self.max_chars = max_chars

    def __call__(self, query: str, results: list[Evidence]) -> list[Evidence]:
        head, tail = results[: self.top_n], results[self.top_n :]
        if len(head) < 2:
            return results
        passages = [ev.segment.text[: self.max_chars] for ev in head]
        message = {"role": "user", "content": rerank_prompt(query, passages)}
        try:
            reply = self.model.chat([message], json_schema=ORDER_SCHEMA, temperature=0.0)
        except ModelError:
            return results
        order = _parse_order(reply.content or "", len(head))
        picked = [head[i - 1] for i in order]
        rest = [ev for i, ev in enumerate(head, start=1) if i not in order]
        reranked = picked + rest
        n = len(reranked)
        return [replace(ev, score=float(n - rank)) for rank, ev in enumerate(reranked)] + tail


def _parse_order(text: str, n: int) -> list[int]:
    """Distinct 1-based passage numbers from ``{"order": [...]}`` or any list of numbers."""
    numbers: list[int] = []
    try:
        data = json.loads(text)
        raw = data.get("order", []) if isinstance(data, dict) else data
        numbers = [int(x) for x in raw if isinstance(x, int | float | str) and str(x).isdigit()]
    except (json.JSONDecodeError, TypeError, ValueError):
        numbers = [int(x) for x in re.findall(r"\d+", text)]
    return [i for i in dict.fromkeys(numbers) if 1 <= i <= n]


class ByQueryScript:
    """Hand a query to the reranker of its script: ``cjk`` for a query written mainly in
    CJK characters, ``latin`` for any other (None: keep that query's order)."""

    def __init__(self, *, cjk: Reranker | None, latin: Reranker | None) -> None:
        self.cjk = cjk
        self.latin = latin

    def __call__(self, query: str, results: list[Evidence]) -> list[Evidence]:
        reranker = self.cjk if units_mainly_cjk(coverage_units(query)) else self.latin
        return reranker(query, results) if reranker is not None else results


_missing_reported = False


def configured_reranker(retrieval: RetrievalSettings) -> Reranker | None:
    """The reranker ``retrieval.rerank`` names (None for 'none').

    'cross-encoder' raises ``CrossEncoderUnavailable`` (naming the package to install)
    when the model is missing; 'auto' then falls back to coverage and logs that once.
    """
    if retrieval.rerank == "none":
        return None
    coverage = CoverageReranker(depth=retrieval.rerank_depth, weight=retrieval.rerank_weight)
    if retrieval.rerank == "coverage":
        return coverage
    from deepfolder.index import cross_encoder

    if retrieval.rerank == "auto" and not cross_encoder.available():
        global _missing_reported
        if not _missing_reported:
            _missing_reported = True
            log.warning(
                "English queries are reranked without the cross-encoder: install it with "
                "`%s` (extra rerank-en), or set retrieval.rerank = 'coverage'",
                cross_encoder.INSTALL_HINT,
            )
        return coverage
    cross_encoder.model_dir()  # raises with the install command when the model is missing
    english = cross_encoder.CrossEncoderReranker(
        cross_encoder.shared_cross_encoder(retrieval.cross_encoder_max_tokens),
        depth=retrieval.cross_encoder_depth,
    )
    return ByQueryScript(cjk=coverage, latin=english)
