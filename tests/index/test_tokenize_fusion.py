"""Tokeniser, reciprocal rank fusion, diversity, filters' scopes, search_one/search_many."""

from __future__ import annotations

from dataclasses import dataclass, field

from deepfolder.index.base import SearchFilter, SearchOptions
from deepfolder.index.fusion import (
    Candidate,
    diversify,
    reciprocal_rank_fusion,
    source_matches,
    source_scopes,
)
from deepfolder.index.query import RERANK_POOL, search_many, search_one
from deepfolder.index.tokenize import segmented, tokenize, tokenize_query
from deepfolder.records import Evidence, Locator, Segment, Source


def test_tokenize_chinese_english_punctuation() -> None:
    tokens = tokenize("北京大学的学生，研究“生命起源”！COVID-19 Vaccines (２０２４年)")
    assert {"北京", "大学", "北京大学", "学生", "生命", "起源"} <= set(tokens)
    assert {"covid-19", "vaccines", "2024", "年"} <= set(tokens)
    assert not {"，", "“", "！", "(", ")", " "} & set(tokens)
    assert tokenize("") == [] and tokenize("，。！？") == []


def test_query_tokens_distinct_and_segmented_form() -> None:
    assert tokenize_query("猫 猫 猫 cat Cat") == ["猫", "cat"]
    assert segmented("Hello, 世界!") == "hello 世界"


def _c(seg: str, src: str) -> Candidate:
    return Candidate(seg, src, 0.0)


def test_rrf_rewards_agreement_and_is_deterministic() -> None:
    lexical = [_c("a", "s1"), _c("b", "s2"), _c("c", "s3")]
    dense = [_c("c", "s3"), _c("b", "s2"), _c("d", "s4")]
    fused = reciprocal_rank_fusion([lexical, dense], rrf_k=60)
    # c (ranks 3 and 1) edges out b (2 and 2); both beat single-list a and d.
    assert [c.segment_id for c in fused] == ["c", "b", "a", "d"]
    assert abs(fused[0].score - (1 / 63 + 1 / 61)) < 1e-12
    assert abs(fused[1].score - 2 / 62) < 1e-12
    weighted = reciprocal_rank_fusion([lexical, dense], rrf_k=60, weights=[1.0, 0.0])
    assert [c.segment_id for c in weighted][:3] == ["a", "b", "c"]


def test_diversify_caps_and_spreads() -> None:
    ranked = [_c("a1", "A"), _c("a2", "A"), _c("a3", "A"), _c("b1", "B"), _c("c1", "C")]
    assert [c.segment_id for c in diversify(ranked, 3)] == ["a1", "a2", "a3"]
    assert [c.segment_id for c in diversify(ranked, 3, max_per_doc=1)] == ["a1", "b1", "c1"]
    assert [c.segment_id for c in diversify(ranked, 3, min_docs=2)] == ["a1", "a2", "b1"]
    assert [c.segment_id for c in diversify(ranked, 4, min_docs=3, max_per_doc=2)] == [
        "a1",
        "a2",
        "b1",
        "c1",
    ]
    assert diversify(ranked, 0) == []
    assert len(diversify(ranked, 10, min_docs=5)) == 5


def test_scopes_and_source_filter() -> None:
    assert source_scopes("a/b.json#3") == ["a/", "a/b.json#", "a/b.json#3"]
    article = Source("a/b.json#3", "a/b.json", "article", article=3)
    assert source_matches(article, SearchFilter(source_ids=("a/",)))
    assert source_matches(article, SearchFilter(collections=("a/b.json",)))
    assert not source_matches(article, SearchFilter(collections=("a/c.json",)))
    assert not source_matches(article, SearchFilter(kinds=("pdf",)))
    assert not source_matches(
        Source("a/x.pdf", "a/x.pdf", "pdf"), SearchFilter(collections=("a/x.pdf",))
    )


@dataclass
class _ListIndex:
    """Minimal stand-in returning a fixed list per query (records the calls)."""

    answers: dict[str, list[Evidence]]
    calls: list[str] = field(default_factory=list)
    options: list[SearchOptions] = field(default_factory=list)

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        self.calls.append(query)
        self.options.append(options)
        return self.answers.get(query, [])[: options.k]


def _ev(text: str, src: str) -> Evidence:
    return Evidence(Segment.create(src, text, Locator(), 0), Source(src, src, "text"), 1.0)


def test_search_many_dedupes_and_fuses() -> None:
    x, y, z = _ev("x", "S1"), _ev("y", "S2"), _ev("z", "S3")
    index = _ListIndex({"q1": [x, y], "q2": [y, z], "q3": [y]})
    results = search_many(index, ["q1", " q2 ", "q1", "", "q3"], SearchOptions(k=5))  # type: ignore[arg-type]
    assert index.calls == ["q1", "q2", "q3"]
    assert results[0].id == y.id
    assert sorted(e.id for e in results) == sorted({x.id, y.id, z.id})
    assert search_many(index, ["  "], SearchOptions()) == []  # type: ignore[arg-type]


def _reverse(query: str, results: list[Evidence]) -> list[Evidence]:
    return list(reversed(results))


def test_search_one_reranks_a_deep_pool_then_diversifies() -> None:
    """The reranker sees the undiversified pool; the per-source cap and the minimum of
    distinct sources apply to the reranked order."""
    a = [_ev(f"a{i}", "A") for i in range(3)]
    b = [_ev("b0", "B")]
    index = _ListIndex({"q": [*a, *b]})
    plain = search_one(index, "q", SearchOptions(k=2, max_per_doc=1))  # type: ignore[arg-type]
    assert [e.id for e in plain] == [a[0].id, a[1].id]  # the stand-in does not diversify
    reranked = search_one(index, "q", SearchOptions(k=2, max_per_doc=1), _reverse)  # type: ignore[arg-type]
    pool_options = index.options[-1]
    assert pool_options.k == RERANK_POOL and pool_options.max_per_doc == 0
    assert pool_options.min_docs == 1
    assert [e.id for e in reranked] == [b[0].id, a[2].id]


def test_search_many_reranks_each_query() -> None:
    x, y = _ev("x", "S1"), _ev("y", "S2")
    index = _ListIndex({"q1": [x, y], "q2": [x, y]})
    results = search_many(index, ["q1", "q2"], SearchOptions(k=2), reranker=_reverse)  # type: ignore[arg-type]
    assert [e.id for e in results] == [y.id, x.id]
