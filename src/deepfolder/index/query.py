"""Query-side search: several phrasings at once, translations, and reranking, over any
backend.

Across languages (a Chinese request about an English paper): lexical search cannot match
across scripts and the fused ranking buries the dense side's cross-script hits under
same-script lexical ones, so ``search_many`` takes ``translations`` of the queries (from
``index.translate.translate_queries``) and searches them as further phrasings, and
``search_one`` can add the dense side's other-script hits as a second fused list
(``cross_script_weight``). What each measured is in docs/benchmarks.md ("Search across
languages").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from deepfolder.index.base import Index, SearchOptions
from deepfolder.index.fusion import Candidate, diversify, reciprocal_rank_fusion
from deepfolder.index.rerank import Reranker
from deepfolder.index.script import mainly_cjk
from deepfolder.records import Evidence

RERANK_POOL = 30
"""How many results (at least; twice ``k`` when that is more) a reranked search asks the
index for before reranking and diversifying: the reranker reorders the top of this pool
and diversity needs some spare candidates from other sources."""

CROSS_SCRIPT_RRF_K = 10
"""RRF constant of the hybrid ranking + other-script dense hits fusion (the backends' own
lexical + dense fusion uses 10 too: measured best on CMRC)."""


def search_one(
    index: Index,
    query: str,
    options: SearchOptions,
    reranker: Reranker | None = None,
    *,
    cross_script_weight: float = 0.0,
) -> list[Evidence]:
    """``index.search``, with the reranker applied before diversity when one is given.

    The reranker sees a deeper pool with no diversity limits, so the per-source cap and
    the minimum of distinct sources are applied to its order, not to the index's.

    ``cross_script_weight`` > 0 (hybrid mode only): a dense search's hits written in
    another script than the query (English passages for a Chinese query, and the
    reverse) are fused into the pool as a second ranking with this weight against 1 for
    the hybrid ranking (reciprocal rank fusion, constant ``CROSS_SCRIPT_RRF_K``).
    """
    boost = cross_script_weight > 0 and options.mode == "hybrid"
    if reranker is None and not boost:
        return index.search(query, options)
    pool = index.search(
        query, replace(options, k=max(RERANK_POOL, options.k * 2), min_docs=1, max_per_doc=0)
    )
    if boost:
        pool = _with_cross_script_hits(index, query, options, pool, cross_script_weight)
    ranked = reranker(query, pool) if reranker is not None else pool
    chosen = diversify(
        [Candidate(e.id, e.source.id, e.score) for e in ranked],
        options.k,
        min_docs=options.min_docs,
        max_per_doc=options.max_per_doc,
    )
    by_id = {e.id: e for e in ranked}
    return [by_id[c.segment_id] for c in chosen]


def _with_cross_script_hits(
    index: Index,
    query: str,
    options: SearchOptions,
    pool: list[Evidence],
    weight: float,
) -> list[Evidence]:
    """The pool fused with the dense side's other-script hits (see ``search_one``)."""
    dense = index.search(
        query, replace(options, k=len(pool), mode="dense", min_docs=1, max_per_doc=0)
    )
    cjk_query = mainly_cjk(query)
    other = [e for e in dense if mainly_cjk(e.segment.text) != cjk_query]
    if not other:
        return pool
    by_id = {e.id: e for e in [*other, *pool]}
    fused = reciprocal_rank_fusion(
        [[Candidate(e.id, e.source.id, e.score) for e in hits] for hits in (pool, other)],
        rrf_k=CROSS_SCRIPT_RRF_K,
        weights=[1.0, weight],
    )
    return [replace(by_id[c.segment_id], score=round(c.score, 6)) for c in fused]


def search_many(
    index: Index,
    queries: Sequence[str],
    options: SearchOptions,
    *,
    reranker: Reranker | None = None,
    rrf_k: int = 60,
    translations: Sequence[str] = (),
    translation_weight: float = 2.0,
    cross_script_weight: float = 0.0,
) -> list[Evidence]:
    """Search several phrasings of one need at once and return one de-duplicated list.

    Each query is searched with ``options`` (and reranked, see ``search_one``); the
    per-query result lists are fused by reciprocal rank fusion (a segment several queries
    agree on rises, and a query that shares words with every phrasing cannot crowd out
    the rest), blank and repeated queries are skipped, and diversity
    (``min_docs``/``max_per_doc``) is applied again to the merged list, which holds at
    most ``options.k`` items.

    ``translations`` (of the queries into the sources' language, e.g. from
    ``translate_queries``) are searched the same way and fused with weight
    ``translation_weight``; ``cross_script_weight`` is passed to ``search_one``.
    """
    distinct = list(dict.fromkeys(q.strip() for q in queries if q and q.strip()))
    translated = [
        t
        for t in dict.fromkeys(t.strip() for t in translations if t and t.strip())
        if t not in distinct
    ]
    if not distinct and not translated:
        return []
    if len(distinct) + len(translated) == 1:
        return search_one(
            index, [*distinct, *translated][0], options, reranker,
            cross_script_weight=cross_script_weight,
        )  # fmt: skip
    per_query_options = replace(options, min_docs=1)
    by_id: dict[str, Evidence] = {}
    lists: list[list[Candidate]] = []
    weights: list[float] = []
    for query, weight in [(q, 1.0) for q in distinct] + [
        (t, translation_weight) for t in translated
    ]:
        results = search_one(
            index, query, per_query_options, reranker, cross_script_weight=cross_script_weight
        )
        lists.append([Candidate(e.id, e.source.id, e.score) for e in results])
        weights.append(weight)
        for evidence in results:
            by_id.setdefault(evidence.id, evidence)
    fused = reciprocal_rank_fusion(lists, rrf_k=rrf_k, weights=weights)
    chosen = diversify(fused, options.k, min_docs=options.min_docs, max_per_doc=options.max_per_doc)
    return [replace(by_id[c.segment_id], score=round(c.score, 4)) for c in chosen]
