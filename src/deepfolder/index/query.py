"""Query-side search: several phrasings at once, and reranking, over any backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from deepfolder.index.base import Index, SearchOptions
from deepfolder.index.fusion import Candidate, diversify, reciprocal_rank_fusion
from deepfolder.index.rerank import Reranker
from deepfolder.records import Evidence

RERANK_POOL = 30
"""How many results (at least; twice ``k`` when that is more) a reranked search asks the
index for before reranking and diversifying: the reranker reorders the top of this pool
and diversity needs some spare candidates from other sources."""


def search_one(
    index: Index, query: str, options: SearchOptions, reranker: Reranker | None = None
) -> list[Evidence]:
    """``index.search``, with the reranker applied before diversity when one is given.

    The reranker sees a deeper pool with no diversity limits, so the per-source cap and
    the minimum of distinct sources are applied to its order, not to the index's.
    """
    if reranker is None:
        return index.search(query, options)
    pool = index.search(
        query, replace(options, k=max(RERANK_POOL, options.k * 2), min_docs=1, max_per_doc=0)
    )
    ranked = reranker(query, pool)
    chosen = diversify(
        [Candidate(e.id, e.source.id, e.score) for e in ranked],
        options.k,
        min_docs=options.min_docs,
        max_per_doc=options.max_per_doc,
    )
    by_id = {e.id: e for e in ranked}
    return [by_id[c.segment_id] for c in chosen]


def search_many(
    index: Index,
    queries: Sequence[str],
    options: SearchOptions,
    *,
    reranker: Reranker | None = None,
    rrf_k: int = 60,
) -> list[Evidence]:
    """Search several phrasings of one need at once and return one de-duplicated list.

    Each query is searched with ``options`` (and reranked, see ``search_one``); the
    per-query result lists are fused by reciprocal rank fusion (a segment several queries
    agree on rises, and a query that shares words with every phrasing cannot crowd out
    the rest), blank and repeated queries are skipped, and diversity
    (``min_docs``/``max_per_doc``) is applied again to the merged list, which holds at
    most ``options.k`` items.
    """
    distinct = list(dict.fromkeys(q.strip() for q in queries if q and q.strip()))
    if not distinct:
        return []
    if len(distinct) == 1:
        return search_one(index, distinct[0], options, reranker)
    per_query_options = replace(options, min_docs=1)
    by_id: dict[str, Evidence] = {}
    lists: list[list[Candidate]] = []
    for query in distinct:
        results = search_one(index, query, per_query_options, reranker)
        lists.append([Candidate(e.id, e.source.id, e.score) for e in results])
        for evidence in results:
            by_id.setdefault(evidence.id, evidence)
    fused = reciprocal_rank_fusion(lists, rrf_k=rrf_k)
    chosen = diversify(fused, options.k, min_docs=options.min_docs, max_per_doc=options.max_per_doc)
    return [replace(by_id[c.segment_id], score=round(c.score, 4)) for c in chosen]
