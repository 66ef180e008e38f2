"""Query-side helpers that make search easier for small models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from deepfolder.index.base import Index, SearchOptions
from deepfolder.index.fusion import Candidate, diversify, reciprocal_rank_fusion
from deepfolder.records import Evidence


def search_many(
    index: Index, queries: Sequence[str], options: SearchOptions, *, rrf_k: int = 60
) -> list[Evidence]:
    """Search several phrasings of one need at once and return one de-duplicated list.

    Each query is searched with ``options``; the per-query result lists are fused by
    reciprocal rank fusion (a segment several queries agree on rises), blank and repeated
    queries are skipped, and diversity (``min_docs``/``max_per_doc``) is applied again to
    the merged list, which holds at most ``options.k`` items.
    """
    distinct = list(dict.fromkeys(q.strip() for q in queries if q and q.strip()))
    if not distinct:
        return []
    if len(distinct) == 1:
        return index.search(distinct[0], options)
    per_query_options = replace(options, min_docs=1)
    by_id: dict[str, Evidence] = {}
    lists: list[list[Candidate]] = []
    for query in distinct:
        results = index.search(query, per_query_options)
        lists.append([Candidate(e.id, e.source.id, e.score) for e in results])
        for evidence in results:
            by_id.setdefault(evidence.id, evidence)
    fused = reciprocal_rank_fusion(lists, rrf_k=rrf_k)
    chosen = diversify(fused, options.k, min_docs=options.min_docs, max_per_doc=options.max_per_doc)
    return [replace(by_id[c.segment_id], score=c.score) for c in chosen]
