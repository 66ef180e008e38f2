from __future__ import annotations

import pytest

from deepfolder.llm.base import ChatModel, ChatResponse, ModelError
from deepfolder.llm.fake import FunctionModel, ScriptedModel, tool_call


def test_scripted_model_replays_and_records() -> None:
    model = ScriptedModel(
        [tool_call("search", {"query": "光伏"}), lambda msgs, tools: f"saw {len(msgs)}", "done"]
    )
    assert isinstance(model, ChatModel)
    first = model.chat([{"role": "user", "content": "问题"}], tools=[{"type": "function"}])
    assert first.tool_calls[0].arguments == {"query": "光伏"}
    assert first.finish_reason == "tool_calls"
    assert model.chat([{"role": "user", "content": "a"}] * 3).content == "saw 3"
    assert model.chat([], max_tokens=9).content == "done"
    assert len(model.calls) == 3
    assert model.calls[0][1] == [{"type": "function"}]
    assert model.calls[2][2]["max_tokens"] == 9
    assert model.remaining == 0
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert model.usage.input_tokens >= first.usage.input_tokens


def test_scripted_model_exhausted_is_clear() -> None:
    model = ScriptedModel(["only one"])
    model.chat([])
    with pytest.raises(ModelError, match=r"exhausted.*call 2.*only 1"):
        model.chat([])


def test_recorded_messages_are_copies() -> None:
    model = ScriptedModel(["x"])
    messages = [{"role": "user", "content": "before"}]
    model.chat(messages)
    messages[0]["content"] = "after"
    assert model.calls[0][0][0]["content"] == "before"


def test_explicit_usage_is_kept_and_response_not_mutated() -> None:
    from deepfolder.records import Usage

    reply = ChatResponse(content="x", usage=Usage(100, 5))
    model = ScriptedModel([reply, reply])
    assert model.chat([]).usage == Usage(100, 5)
    assert model.chat([]).model == "fake:scripted"
    assert model.usage == Usage(200, 10)


def test_function_model_with_and_without_kwargs() -> None:
    model = FunctionModel(lambda messages, tools: messages[-1]["content"].upper())
    assert model.chat([{"role": "user", "content": "abc"}]).content == "ABC"

    seen = {}

    def fn(messages, tools, kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs)
        return ChatResponse(content="{}")

    FunctionModel(fn, is_local=True).chat([], json_schema={"type": "object"})
    assert seen["json_schema"] == {"type": "object"}


def test_bad_reply_type_raises() -> None:
    with pytest.raises(TypeError, match="ChatResponse"):
        FunctionModel(lambda m, t: 42).chat([])  # type: ignore[arg-type, return-value]
