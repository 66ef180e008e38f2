"""Rank fusion, filters and diversity: the parts of search every backend shares.

A backend produces ranked candidate lists (lexical, dense) of segment ids together with
each candidate's source id; this module fuses them and picks the final ``k`` so that all
backends rank and diversify the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deepfolder.index.base import SearchFilter, SearchOptions
from deepfolder.records import Segment, Source


@dataclass(frozen=True, slots=True)
class Candidate:
    segment_id: str
    source_id: str
    score: float


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[Candidate]],
    *,
    rrf_k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[Candidate]:
    """Fuse ranked lists: ``score(d) = sum_i w_i / (rrf_k + rank_i(d))`` (rank 1-based).

    Ties are broken by the best rank the candidate had in any list, then by list order,
    so the result is deterministic.
    """
    weights = weights or [1.0] * len(ranked_lists)
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    source_of: dict[str, str] = {}
    for weight, ranked in zip(weights, ranked_lists, strict=True):
        for rank, cand in enumerate(ranked, start=1):
            scores[cand.segment_id] = scores.get(cand.segment_id, 0.0) + weight / (rrf_k + rank)
            best_rank[cand.segment_id] = min(best_rank.get(cand.segment_id, rank), rank)
            source_of[cand.segment_id] = cand.source_id
    order = sorted(scores, key=lambda sid: (-scores[sid], best_rank[sid]))
    return [Candidate(sid, source_of[sid], scores[sid]) for sid in order]


CANDIDATES = 60
"""How many candidates each retriever contributes to fusion (at least; 4·k for big k)."""

Retriever = Callable[[int], list[Candidate]]
"""A backend's ranked candidates for the current query: ``retrieve(n)`` → best ``n``."""


def hybrid_search(
    options: SearchOptions,
    *,
    lexical: Retriever,
    dense: Retriever | None,
    weights: tuple[float, float],
    rrf_k: int,
) -> list[Candidate]:
    """The search every backend runs: the lexical and/or dense candidates the mode asks
    for (lexical only when the backend has no dense side), fused, then diversified."""
    n = max(CANDIDATES, options.k * 4)
    mode = options.mode if dense is not None else "lexical"
    lists: list[list[Candidate]] = []
    used: list[float] = []
    if mode in ("lexical", "hybrid"):
        lists.append(lexical(n))
        used.append(weights[0])
    if mode in ("dense", "hybrid") and dense is not None:
        lists.append(dense(n))
        used.append(weights[1])
    fused = fuse(lists, used, rrf_k=rrf_k)
    return diversify(fused, options.k, min_docs=options.min_docs, max_per_doc=options.max_per_doc)


def fuse(
    ranked_lists: Sequence[Sequence[Candidate]], weights: Sequence[float], *, rrf_k: int
) -> list[Candidate]:
    """One retriever's list as it is; several fused by weighted reciprocal rank fusion."""
    if len(ranked_lists) <= 1:
        return list(ranked_lists[0]) if ranked_lists else []
    return reciprocal_rank_fusion(ranked_lists, rrf_k=rrf_k, weights=weights)


def diversify(
    ranked: Sequence[Candidate], k: int, *, min_docs: int = 1, max_per_doc: int = 0
) -> list[Candidate]:
    """The best ``k`` candidates with at least ``min_docs`` distinct sources (when that
    many exist among the candidates) and at most ``max_per_doc`` per source (0: no limit).

    First the best candidate of each of the first ``min_docs`` distinct sources is taken,
    then the remaining places are filled in rank order under the per-source cap. The
    result keeps the original rank order.
    """
    if k <= 0:
        return []
    chosen: set[int] = set()
    per_doc: dict[str, int] = {}
    seen_docs: list[str] = []
    for i, cand in enumerate(ranked):
        if len(seen_docs) >= min(min_docs, k):
            break
        if cand.source_id not in per_doc:
            seen_docs.append(cand.source_id)
            per_doc[cand.source_id] = 1
            chosen.add(i)
    for i, cand in enumerate(ranked):
        if len(chosen) >= k:
            break
        if i in chosen:
            continue
        used = per_doc.get(cand.source_id, 0)
        if max_per_doc and used >= max_per_doc:
            continue
        per_doc[cand.source_id] = used + 1
        chosen.add(i)
    return [ranked[i] for i in sorted(chosen)]


def source_scopes(source_id: str) -> list[str]:
    """The id itself and every prefix that a filter may name: each directory prefix ending
    in ``/`` and the collection prefix ending in ``#`` (``a/b.json#3`` → ``a/``,
    ``a/b.json#``, ``a/b.json#3``). Backends index these so a filter is one set lookup."""
    scopes: list[str] = []
    for i, ch in enumerate(source_id):
        if ch in "/#" and i + 1 < len(source_id):
            scopes.append(source_id[: i + 1])
    scopes.append(source_id)
    return scopes


def searchable_text(source: Source, text: str) -> str:
    """What is indexed for a chunk: the source's title, then the chunk's text.

    A chunk from the middle of a document often never names its subject (the third chunk
    of a biography says "in 1992 he became…" without the person's name); prefixing the
    title lets both the lexical and the dense side match the subject. The stored segment
    text is unchanged.
    """
    title = source.title.strip()
    return f"{title}\n{text}" if title and title not in text[: len(title) + 40] else text


def checked_segments(segments: Iterable[Segment], known: Iterable[str]) -> list[Segment]:
    """The segments to add, one per id (the last wins), after checking that each belongs
    to a known source id; a ValueError names the unknown ones."""
    unique = list({seg.id: seg for seg in segments}.values())
    missing = {seg.source_id for seg in unique} - set(known)
    if missing:
        raise ValueError(
            f"segments refer to sources not added to the index: {sorted(missing)[:5]}; "
            "pass their Source records in the same add() call or an earlier one"
        )
    return unique


def collection_names(path: Path) -> tuple[str, str]:
    """The segments and sources collections a server backend keeps for the index
    directory ``path`` (named after its last component, so one server holds many)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", path.name) or "index"
    return f"deepfolder_{name}_segments", f"deepfolder_{name}_sources"


def collection_of(source: Source) -> str | None:
    """The collection file an article belongs to (None for ordinary files)."""
    return source.path if source.article is not None or source.kind == "article" else None


def filter_is_empty(flt: SearchFilter) -> bool:
    return not (flt.source_ids or flt.kinds or flt.collections)


def source_matches(source: Source, flt: SearchFilter) -> bool:
    """Whether a source passes the filter (all given parts must hold)."""
    if flt.source_ids and not set(flt.source_ids) & set(source_scopes(source.id)):
        return False
    if flt.kinds and source.kind not in flt.kinds:
        return False
    return not (flt.collections and collection_of(source) not in flt.collections)


def dedupe_keep_order(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
