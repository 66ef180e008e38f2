from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from deepfolder.llm.base import ModelConfigError, ModelError
from deepfolder.llm.openai_compat import (
    OpenAIChatModel,
    _retry_after_seconds,
    parse_tool_call,
    split_model_name,
)

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
    bad = parse_tool_call("a", "f", "[1, 2]")
    assert bad.parse_error is not None and "JSON object" in bad.parse_error


def test_retry_after_parsing() -> None:
    assert _retry_after_seconds("2") == 2.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("garbage") is None
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
