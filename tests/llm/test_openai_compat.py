from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from deepfolder.llm.base import ChatResponse, ModelConfigError, ModelError, set_retry_listener
from deepfolder.llm.openai_compat import (
    MalformedReply,
    OpenAIChatModel,
    _retry_after_seconds,
    parse_completion,
    parse_tool_call,
    split_model_name,
)
from deepfolder.llm.text_protocol import TextToolModel
from deepfolder.records import RetryStep
from openai_server import FakeOpenAIServer as FakeServer

Server = Any  # tests/llm/conftest.py FakeOpenAIServer


def make_model(server: Server, **kwargs: object) -> OpenAIChatModel:
    options: dict[str, object] = {
        "base_url": server.base_url,
        "api_key": "test-key",
        "backoff_base_s": 0.01,
        "max_retries": 3,
        "timeout_s": 5.0,
    }
    options.update(kwargs)
    return OpenAIChatModel("vllm:test-model", **options)  # type: ignore[arg-type]


def test_guard_blocks_before_any_request(openai_server: Server) -> None:
    with openai_server([(200, openai_server.completion("hi"), {})]) as server:
        model = make_model(server)
        with pytest.raises(ModelError, match="real model requests are disabled"):
            model.chat([{"role": "user", "content": "hi"}])
        assert server.requests == []


@pytest.mark.usefixtures("allow_requests")
def test_plain_reply_and_usage(openai_server: Server) -> None:
    body = openai_server.completion("你好", prompt_tokens=21, completion_tokens=3)
    with openai_server([(200, body, {})]) as server:
        model = make_model(server)
        reply = model.chat([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0.1)
    assert reply.content == "你好"
    assert reply.usage.input_tokens == 21
    assert reply.usage.output_tokens == 3
    assert model.usage.input_tokens == 21
    assert server.requests[0]["max_tokens"] == 5
    assert server.requests[0]["temperature"] == 0.1
    assert server.requests[0]["model"] == "test-model"


@pytest.mark.usefixtures("allow_requests")
def test_429_then_200_is_retried_and_counted(
    openai_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    script = [
        (429, {"error": {"message": "slow down"}}, {"retry-after": "0.05"}),
        (200, openai_server.completion("done"), {}),
    ]
    with openai_server(script) as server, caplog.at_level(logging.WARNING):
        model = make_model(server)
        start = time.monotonic()
        reply = model.chat([{"role": "user", "content": "hi"}])
        elapsed = time.monotonic() - start
    assert reply.content == "done"
    assert model.retries_total == 1
    assert len(server.requests) == 2  # the SDK's own retries are off: exactly one retry
    assert elapsed >= 0.05  # Retry-After honoured
    assert "HTTP 429" in caplog.text


@pytest.mark.usefixtures("allow_requests")
def test_500_then_200_is_retried(openai_server: Server) -> None:
    script = [(500, {"error": {"message": "boom"}}, {}), (200, openai_server.completion("ok"), {})]
    with openai_server(script) as server:
        model = make_model(server)
        assert model.chat([{"role": "user", "content": "x"}]).content == "ok"
    assert model.retries_total == 1


@pytest.mark.usefixtures("allow_requests")
def test_retries_exhausted_raise_model_error(openai_server: Server) -> None:
    script = [(503, {"error": {"message": "down"}}, {})] * 3
    with openai_server(script) as server:
        model = make_model(server, max_retries=2)
        with pytest.raises(ModelError, match="after 3 attempt"):
            model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 3


@pytest.mark.usefixtures("allow_requests")
def test_400_is_not_retried(openai_server: Server) -> None:
    with openai_server([(400, {"error": {"message": "bad request"}}, {})]) as server:
        model = make_model(server)
        with pytest.raises(ModelError, match="HTTP 400"):
            model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


@pytest.mark.usefixtures("allow_requests")
def test_timeout_is_retried_then_fails(openai_server: Server) -> None:
    with openai_server([("sleep", 1.0), ("sleep", 1.0)]) as server:
        model = make_model(server, timeout_s=0.2, max_retries=1)
        with pytest.raises(ModelError, match="Timeout"):
            model.chat([{"role": "user", "content": "x"}])
    assert model.retries_total == 1


@pytest.mark.usefixtures("allow_requests")
def test_tool_calls_parsed_and_malformed_arguments_reported(openai_server: Server) -> None:
    calls = [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "search", "arguments": '{"query": "光伏", "k": 3}'},
        },
        {
            "id": "c2",
            "type": "function",
            "function": {"name": "read", "arguments": '{"id": "E1234abcd",'},
        },
    ]
    body = openai_server.completion(None, tool_calls=calls, finish_reason="tool_calls")
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    with openai_server([(200, body, {})]) as server:
        reply = make_model(server).chat(
            [{"role": "user", "content": "x"}], tools=tools, tool_choice="auto"
        )
    assert server.requests[0]["tools"] == tools
    assert server.requests[0]["tool_choice"] == "auto"
    assert reply.finish_reason == "tool_calls"
    first, second = reply.tool_calls
    assert (first.id, first.name, first.arguments) == ("c1", "search", {"query": "光伏", "k": 3})
    assert first.parse_error is None
    assert second.arguments == {}
    assert second.parse_error is not None and "not valid JSON" in second.parse_error
    assert second.raw_arguments == '{"id": "E1234abcd",'


@pytest.mark.usefixtures("allow_requests")
def test_json_schema_uses_response_format_or_instruction(openai_server: Server) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    with openai_server([(200, openai_server.completion('```json\n{"a": 1}\n```'), {})]) as server:
        reply = make_model(server).chat([{"role": "user", "content": "x"}], json_schema=schema)
    assert server.requests[0]["response_format"]["type"] == "json_schema"
    assert server.requests[0]["response_format"]["json_schema"]["schema"] == schema
    assert reply.content == '{"a": 1}'

    with openai_server([(200, openai_server.completion('{"a": 2}'), {})]) as server:
        model = OpenAIChatModel(
            "deepseek:deepseek-chat", base_url=server.base_url, api_key="k", max_retries=0
        )
        model.chat([{"role": "user", "content": "x"}], json_schema=schema)
    sent = server.requests[0]
    assert sent["response_format"] == {"type": "json_object"}
    assert '"integer"' in sent["messages"][-1]["content"]


def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    monkeypatch.delenv("DEEPFOLDER_API_KEY", raising=False)
    with pytest.raises(ModelConfigError, match="DEEPSEEK_API_KEY"):
        OpenAIChatModel("deepseek:deepseek-chat")
    monkeypatch.setenv("DEEPFOLDER_API_KEY", "sk-generic")
    assert OpenAIChatModel("deepseek:deepseek-chat").context_window == 64_000


def test_local_provider_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPFOLDER_API_KEY", raising=False)
    model = OpenAIChatModel("ollama:qwen2.5:7b")
    assert model.model == "qwen2.5:7b"
    assert model.base_url == "http://127.0.0.1:11434/v1"


def test_bad_model_specs() -> None:
    with pytest.raises(ModelConfigError, match="unknown provider"):
        split_model_name("nosuch:model")
    with pytest.raises(ModelConfigError, match="provider:model"):
        split_model_name("gpt-4o")
    with pytest.raises(ModelConfigError, match="base URL"):
        OpenAIChatModel("custom:my-model", api_key="k")


def test_parse_tool_call_non_object_and_empty() -> None:
    assert parse_tool_call("a", "f", "").arguments == {}
    assert parse_tool_call("a", "f", "").parse_error is None
    assert parse_tool_call("a", "f", "null").arguments == {}
    assert parse_tool_call("a", "f", "null").parse_error is None
    bad = parse_tool_call("a", "f", "[1, 2]")
    assert bad.parse_error is not None and "JSON object" in bad.parse_error


def test_retry_after_parsing() -> None:
    assert _retry_after_seconds("2") == 2.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("garbage") is None
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# --- every malformed 200 reply is retried, then a clear ModelError -------------------


def _choice_without_message() -> dict[str, Any]:
    body = FakeServer.completion("x")
    del body["choices"][0]["message"]
    return body


def _content_is_object() -> dict[str, Any]:
    body = FakeServer.completion("x")
    body["choices"][0]["message"]["content"] = {"text": "x"}
    return body


def _tool_calls_not_a_list() -> dict[str, Any]:
    body = FakeServer.completion(None)
    body["choices"][0]["message"]["tool_calls"] = {"id": "c1"}
    return body


MALFORMED_200 = {
    "html error page": ("raw", 200, "<html><body>502 Bad Gateway</body></html>"),
    "empty body": ("raw", 200, ""),
    "cut-off JSON": ("raw", 200, json.dumps(FakeServer.completion("hello"))[:60]),
    "JSON list": (200, [FakeServer.completion("x")], {}),
    "JSON string": ("raw", 200, '"ok"'),
    "no choices": (200, {"id": "x", "choices": []}, {}),
    "choices missing": (200, {"id": "x", "object": "chat.completion"}, {}),
    "error object": (200, {"error": {"message": "upstream overloaded"}}, {}),
    "choice without message": (200, _choice_without_message(), {}),
    "choice is a string": (200, {"choices": ["hello"]}, {}),
    "content is an object": (200, _content_is_object(), {}),
    "tool_calls not a list": (200, _tool_calls_not_a_list(), {}),
}


@pytest.mark.reliability
@pytest.mark.usefixtures("allow_requests")
@pytest.mark.parametrize("fault", sorted(MALFORMED_200))
def test_malformed_200_is_retried_and_reported(openai_server: Server, fault: str) -> None:
    retries: list[RetryStep] = []
    script = [MALFORMED_200[fault], (200, openai_server.completion("recovered"), {})]
    with openai_server(script) as server:
        model = make_model(server)
        set_retry_listener(model, retries.append)
        reply = model.chat([{"role": "user", "content": "x"}])
    assert reply.content == "recovered"
    assert len(server.requests) == 2
    assert model.retries_total == 1
    (retry,) = retries
    assert retry.attempt == 1 and retry.max_retries == 3 and retry.status == 200
    assert retry.reason.startswith("malformed reply") and retry.wait_s >= 0


@pytest.mark.reliability
@pytest.mark.usefixtures("allow_requests")
@pytest.mark.parametrize("fault", ["cut-off JSON", "choice without message", "error object"])
def test_malformed_replies_exhausted_raise_model_error(openai_server: Server, fault: str) -> None:
    with openai_server([MALFORMED_200[fault]] * 3) as server:
        model = make_model(server, max_retries=2)
        with pytest.raises(ModelError, match=r"after 3 attempt\(s\): malformed reply") as info:
            model.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 3
    expected = {
        "cut-off JSON": "cut off",
        "choice without message": "no message",
        "error object": "upstream overloaded",
    }[fault]
    assert expected in str(info.value)


@pytest.mark.reliability
@pytest.mark.usefixtures("allow_requests")
def test_reply_cut_off_in_transit_is_retried(openai_server: Server) -> None:
    retries: list[RetryStep] = []
    body = json.dumps(openai_server.completion("hello"))
    script = [("dropped", body[:40]), (200, openai_server.completion("whole"), {})]
    with openai_server(script) as server:
        model = make_model(server)
        set_retry_listener(model, retries.append)
        assert model.chat([{"role": "user", "content": "x"}]).content == "whole"
    assert [r.reason for r in retries] == ["APIConnectionError"]


@pytest.mark.reliability
@pytest.mark.usefixtures("allow_requests")
def test_status_retries_reach_the_listener(openai_server: Server) -> None:
    retries: list[RetryStep] = []
    script = [
        (503, {"error": {"message": "down"}}, {"retry-after": "0.02"}),
        ("sleep", 1.0),
        (200, openai_server.completion("ok"), {}),
    ]
    with openai_server(script) as server:
        model = make_model(server, timeout_s=0.3)
        set_retry_listener(TextToolModel(model), retries.append)  # found through the wrapper
        assert model.chat([{"role": "user", "content": "x"}]).content == "ok"
    assert [(r.attempt, r.status) for r in retries] == [(1, 503), (2, None)]
    assert retries[0].reason == "HTTP 503" and retries[0].wait_s == 0.02
    assert retries[1].reason == "APITimeoutError"


def _tool_reply(server: Server, calls: list[dict[str, Any]]) -> ChatResponse:
    body = server.completion(None, tool_calls=calls, finish_reason="tool_calls")
    with server([(200, body, {})]) as running:
        return make_model(running).chat([{"role": "user", "content": "x"}])


@pytest.mark.reliability
@pytest.mark.usefixtures("allow_requests")
def test_odd_tool_calls_become_calls_or_fixable_errors(openai_server: Server) -> None:
    reply = _tool_reply(
        openai_server,
        [
            {
                "id": "a",
                "type": "function",
                "function": {"name": "search", "arguments": {"query": "光伏"}},
            },
            {"id": "b", "type": "function", "function": {"name": None, "arguments": "{}"}},
            {"id": "c", "type": "function"},
            {"id": "a", "type": "function", "function": {"name": "read", "arguments": None}},
            {"id": "e", "type": "function", "function": {"name": "read", "arguments": 42}},
        ],
    )
    obj, null_name, no_function, no_args, number = reply.tool_calls
    # arguments sent as an object are accepted, and sent back as a JSON string
    assert (obj.name, obj.arguments, obj.parse_error) == ("search", {"query": "光伏"}, None)
    assert json.loads(reply.assistant_message()["tool_calls"][0]["function"]["arguments"]) == {
        "query": "光伏"
    }
    assert null_name.name == "" and "no tool name" in (null_name.parse_error or "")
    assert no_function.name == "" and no_function.parse_error
    assert no_args.arguments == {} and no_args.parse_error is None
    assert no_args.id != obj.id  # each tool result must answer a distinct call id
    assert number.parse_error and "JSON object" in number.parse_error


@pytest.mark.reliability
def test_parse_completion_reads_content_parts_and_odd_usage() -> None:
    body = FakeServer.completion(None)
    body["choices"][0]["message"]["content"] = [
        {"type": "text", "text": "两段"},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "文字"},
    ]
    body["usage"] = {"prompt_tokens": "12", "completion_tokens": 3}
    body["choices"][0]["finish_reason"] = None
    reply = parse_completion(json.dumps(body))
    assert reply.content == "两段文字"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (0, 3)
    assert reply.finish_reason == "stop"
    with pytest.raises(MalformedReply, match="cut off"):
        parse_completion('{"choices": [{"message": {"content": "hal')
    with pytest.raises(MalformedReply, match="not JSON"):
        parse_completion("<html>oops</html>")
