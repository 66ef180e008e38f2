"""translate_queries against the package's fake models: one call under a JSON schema,
only other-script queries sent, lenient parsing, and failures that never raise."""

from __future__ import annotations

from typing import Any

from deepfolder.index.translate import (
    keep_terms,
    needs_translation,
    parse_translations,
    translate_queries,
    translation_schema,
)
from deepfolder.llm.base import ChatResponse, ModelError
from deepfolder.llm.fake import FunctionModel, ScriptedModel
from deepfolder.prompts.retrieval import language_name


def test_one_call_under_a_schema_for_the_other_script_queries() -> None:
    seen: list[dict[str, Any]] = []

    def answer(messages: list[dict[str, Any]], tools: Any, kwargs: dict[str, Any]) -> str:
        seen.append({"prompt": messages[-1]["content"], **kwargs})
        return '{"translations": ["DPO loss function", "Bradley-Terry preference model"]}'

    queries = [
        "直接偏好优化的损失函数",
        "already English",
        "Bradley-Terry 偏好模型",
        "直接偏好优化的损失函数",
    ]
    out = translate_queries(FunctionModel(answer), queries, "en")
    assert out == ["DPO loss function", "Bradley-Terry preference model"]
    assert len(seen) == 1
    call = seen[0]
    assert call["json_schema"] == translation_schema(2)
    assert call["json_schema"]["properties"]["translations"]["minItems"] == 2
    assert call["temperature"] == 0.0
    assert "into English" in call["prompt"]
    assert "1. 直接偏好优化的损失函数\n2. Bradley-Terry 偏好模型" in call["prompt"]
    assert "already English" not in call["prompt"]


def test_into_chinese_and_nothing_to_translate() -> None:
    model = ScriptedModel(['{"translations": ["奖励模型"]}'])
    assert translate_queries(model, ["reward model", "奖励"], "zh") == ["奖励模型"]
    assert "Simplified Chinese" in model.calls[0][0][-1]["content"]
    empty = ScriptedModel([])  # a call would raise: nothing needs translating
    assert translate_queries(empty, ["奖励模型", "  "], "zh-CN") == []
    assert translate_queries(empty, [], "en") == []


def test_failures_and_bad_replies_give_an_empty_list() -> None:
    def fail(messages: Any, tools: Any) -> ChatResponse:
        raise ModelError("endpoint down")

    assert translate_queries(FunctionModel(fail), ["奖励模型"], "en") == []
    assert translate_queries(ScriptedModel(["not json at all"]), ["奖励模型"], "en") == []
    assert translate_queries(ScriptedModel(['{"translations": "x"}']), ["奖励模型"], "en") == []
    # an echo of the query is no translation; extra items are cut to one per query
    assert (
        translate_queries(ScriptedModel(['{"translations": ["奖励模型"]}']), ["奖励模型"], "en")
        == []
    )
    extra = ScriptedModel(['{"translations": ["reward model", "extra"]}'])
    assert translate_queries(extra, ["奖励模型"], "en") == ["reward model"]


def test_latin_terms_the_model_dropped_are_kept() -> None:
    """Measured: the embedded model translated "Unlikelihood 基线方法" as "Baseline method"."""
    model = ScriptedModel(['{"translations": ["Baseline method", "PPO instability"]}'])
    out = translate_queries(model, ["Unlikelihood 基线方法", "PPO 的不稳定性"], "en")
    assert out == ["Baseline method Unlikelihood", "PPO instability"]
    assert keep_terms("TL;DR 摘要的胜率", "summary win rate") == "summary win rate TL DR"
    assert keep_terms("CNN/DailyMail 上的表现", "results") == "results CNN/DailyMail"
    assert keep_terms("GPT-4 评判", "GPT-4 judgments") == "GPT-4 judgments"


def test_parse_translations_is_lenient() -> None:
    assert parse_translations('["a", " b ", "", 3]') == ["a", "b"]
    assert parse_translations('```json\n{"translations": ["a"]}\n```') == ["a"]
    assert parse_translations('Sure: ["x"] done') == ["x"]
    assert parse_translations("{broken") == []


def test_language_helpers() -> None:
    assert language_name("en") == "English" and language_name("zh-CN") == "Simplified Chinese"
    assert language_name("German") == "German"
    assert needs_translation("奖励模型", "en") and not needs_translation("reward model", "en")
    assert needs_translation("reward model", "zh") and not needs_translation("奖励", "ja")
    assert not needs_translation("   ", "en")
