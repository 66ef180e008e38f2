"""The rerankers: coverage (no model) and the LLM hook, driven by a fake model."""

from __future__ import annotations

from typing import Any

from deepfolder.index.rerank import (
    CoverageReranker,
    LLMReranker,
    _parse_order,
    configured_reranker,
    coverage_units,
)
from deepfolder.llm.base import ChatResponse, ModelError
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.settings import RetrievalSettings


def _results() -> list[Evidence]:
    src = Source("a.txt", "a.txt", "text")
    texts = ["猫吃鱼", "狗吃骨头", "熊猫吃竹子", "天气很好"]
    return [
        Evidence(Segment.create("a.txt", t, Locator(chunk=i + 1), i), src, 1.0)
        for i, t in enumerate(texts)
    ]


def test_reorders_by_model_answer_and_keeps_the_rest() -> None:
    seen: dict[str, Any] = {}

    def answer(messages: list[dict[str, Any]], tools: Any, kwargs: dict[str, Any]) -> ChatResponse:
        seen["prompt"] = messages[-1]["content"]
        seen["schema"] = kwargs["json_schema"]
        return ChatResponse(content='{"order": [3, 3, 9, 1]}')

    results = _results()
    reranked = LLMReranker(FunctionModel(answer), top_n=3)("熊猫吃什么", results)
    assert [e.segment.text for e in reranked] == ["熊猫吃竹子", "猫吃鱼", "狗吃骨头", "天气很好"]
    assert "[3] 熊猫吃竹子" in seen["prompt"] and "天气很好" not in seen["prompt"]
    assert seen["schema"]["required"] == ["order"]
    assert reranked[0].score > reranked[1].score


def test_model_failure_keeps_order() -> None:
    def fail(messages: Any, tools: Any) -> ChatResponse:
        raise ModelError("endpoint down")

    results = _results()
    assert LLMReranker(FunctionModel(fail))("q", results) == results


def test_parse_order_lenient() -> None:
    assert _parse_order("[2, 1]", 3) == [2, 1]
    assert _parse_order("passages 3 then 1", 3) == [3, 1]
    assert _parse_order('{"order": ["2", 7]}', 3) == [2]


def _chunks(title: str, texts: list[str], scores: list[float]) -> list[Evidence]:
    src = Source("bio.json#0", "bio.json", "article", title=title, article=0)
    return [
        Evidence(Segment.create(src.id, t, Locator(article=0, chunk=i + 1), i), src, score)
        for i, (t, score) in enumerate(zip(texts, scores, strict=True))
    ]


def test_coverage_units_are_characters_and_words() -> None:
    assert coverage_units("AI技术在2024年Ｔｅｓｔ，hello-world") == [
        "ai", "技", "术", "在", "2024", "年", "test", "hello", "world",
    ]  # fmt: skip


def test_coverage_lifts_the_chunk_holding_the_asked_fact() -> None:
    """BM25 prefers the chunk that repeats the subject; the asked date and office are in
    the second chunk, which the coverage of the query's characters and pairs lifts."""
    results = _chunks(
        "罗保铭",
        [
            "罗保铭，天津人，1969年参加工作。罗保铭历任天津市多个职务，罗保铭后调任海南。",
            "1992年4月，任大港区委副书记，同年担任区长职务。",
            "天气很好，与本题无关。",
        ],
        [20.0, 18.0, 5.0],
    )
    query = "1992年4月罗保铭担任什么职务？"
    reranked = CoverageReranker()(query, results)
    assert reranked[0].id == results[1].id
    assert reranked[-1].id == results[2].id
    assert reranked[0].score > reranked[1].score
    assert CoverageReranker(weight=0.0)(query, results) == [
        Evidence(e.segment, e.source, e.score / 20.0) for e in results
    ]


def test_coverage_keeps_the_tail_and_degenerate_inputs() -> None:
    results = _chunks("t", ["alpha beta", "gamma delta", "alpha gamma"], [3.0, 2.0, 1.0])
    reranked = CoverageReranker(depth=2)("gamma delta", results)
    assert [e.id for e in reranked] == [results[1].id, results[0].id, results[2].id]
    assert CoverageReranker()("，。！", results) == results
    assert CoverageReranker()("gamma", results[:1]) == results[:1]


def test_coverage_works_with_negative_scores_by_rank() -> None:
    results = _chunks("t", ["sea walls", "managed retreat and wetland"], [-0.1, -0.2])
    reranked = CoverageReranker()("wetland retreat", results)
    assert reranked[0].id == results[1].id


def test_configured_reranker() -> None:
    assert isinstance(configured_reranker(RetrievalSettings(rerank="coverage")), CoverageReranker)
    assert configured_reranker(RetrievalSettings(rerank="none")) is None
    custom = configured_reranker(
        RetrievalSettings(rerank="coverage", rerank_depth=5, rerank_weight=0.5)
    )
    assert isinstance(custom, CoverageReranker) and (custom.depth, custom.weight) == (5, 0.5)


def test_coverage_leaves_cross_script_hits_neutral() -> None:
    """An English query's Chinese dense hit shares no words with it by nature: its score
    stays as retrieved, while English passages are compared among themselves."""
    zh = Source("zh.json#0", "zh.json", "article", title="熊猫", article=0)
    en = Source("en.md", "en.md", "markdown")
    results = [
        Evidence(Segment.create(zh.id, "大熊猫主要以竹子为食。", Locator(chunk=1), 0), zh, 1.0),
        Evidence(Segment.create(en.id, "Zoo opening hours.", Locator(page=1), 0), en, 0.9),
        Evidence(Segment.create(en.id, "Pandas eat bamboo daily.", Locator(page=2), 1), en, 0.8),
    ]
    reranked = CoverageReranker()("what do giant pandas eat", results)
    assert [e.id for e in reranked] == [results[2].id, results[0].id, results[1].id]
    assert reranked[1].score == 1.0
