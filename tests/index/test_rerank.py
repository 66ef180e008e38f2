"""The LLM reranker hook, driven by a fake model."""

from __future__ import annotations

from typing import Any

from deepfolder.index.rerank import LLMReranker, _parse_order
from deepfolder.llm.base import ChatResponse, ModelError
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import Evidence, Locator, Segment, Source


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
