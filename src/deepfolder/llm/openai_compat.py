"""Any OpenAI-compatible chat endpoint: OpenAI, DeepSeek, Qwen (DashScope), vLLM, SGLang,
Ollama, a llama.cpp server, OpenRouter, or any other base URL.

A thin adapter: the wire format, retries and usage, no agent logic. Subtle parts:

- The SDK's own retries are switched off (``max_retries=0``) so that the retries here are
  the only ones and each is logged, counted (``retries_total``) and reported to
  ``on_retry`` (the run records it as a :class:`~deepfolder.records.RetryStep`). 429,
  408, 409, 5xx, timeouts and connection errors are retried with exponential backoff and
  full jitter; a ``Retry-After`` header (seconds or HTTP date) is honoured.
- With a :class:`~deepfolder.llm.rate_limit.RequestPacer` (``model.max_requests_per_minute``,
  or a batch's shared state), every attempt waits for its turn first, and a
  ``Retry-After`` holds every client sharing the pacer, not only this one.
- The body of a 200 reply is parsed here, not by the SDK (``with_raw_response``): a body
  that is not JSON, is cut off, is an error object, or has no usable choice/message is
  a *malformed reply* and is retried like a 5xx; when the retries run out it is a
  :class:`ModelError` naming what was wrong. The SDK's lenient models would instead hand
  back objects with missing fields and fail later as a traceback.
- The test guard (:mod:`deepfolder.llm.guard`) is checked before every request.
- Tool calls are the model's, so their mistakes are never raised: arguments that are not
  a JSON object, or a call without a name, come back with ``parse_error`` set and go to
  the model as an observation it can fix. Arguments sent as a JSON object instead of a
  string (some servers do) are accepted as they are.
- ``json_schema`` uses ``response_format={"type": "json_schema"}`` where the provider
  supports it; otherwise the schema is added to the prompt as an instruction, and the
  reply's content is stripped of Markdown fences so it parses.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from deepfolder.llm.base import (
    ChatResponse,
    Message,
    ModelConfigError,
    ModelError,
    RetryListener,
    ToolCallRequest,
    ToolSpec,
)
from deepfolder.llm.guard import check_model_request_allowed
from deepfolder.llm.rate_limit import RequestPacer
from deepfolder.llm.tokens import estimate_tokens
from deepfolder.records import RetryStep, Usage

log = logging.getLogger("deepfolder.llm")

GENERIC_KEY_ENV = "DEEPFOLDER_API_KEY"


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    base_url: str
    key_env: str | None
    """Environment variable with the API key; None for local servers that need none."""
    native_tools: bool = True
    json_schema: bool = True
    """Accepts ``response_format={"type": "json_schema", ...}``."""
    json_object: bool = True
    """Accepts ``response_format={"type": "json_object"}``."""
    default_context_window: int = 32768


PROVIDERS: dict[str, Provider] = {
    "openai": Provider(
        "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", True, True, True, 128_000
    ),
    "deepseek": Provider(
        "deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", True, False, True, 64_000
    ),
    "qwen": Provider(
        "qwen",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        True,
        False,
        True,
        131_072,
    ),
    "openrouter": Provider(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        True,
        True,
        True,
        128_000,
    ),
    "vllm": Provider("vllm", "http://127.0.0.1:8000/v1", None, True, True, True, 32768),
    "sglang": Provider("sglang", "http://127.0.0.1:30000/v1", None, True, True, True, 32768),
    "ollama": Provider("ollama", "http://127.0.0.1:11434/v1", None, True, True, True, 8192),
    "llamacpp": Provider("llamacpp", "http://127.0.0.1:8080/v1", None, True, True, True, 8192),
    "custom": Provider("custom", "", GENERIC_KEY_ENV, True, False, True, 32768),
}
"""Defaults per provider. ``native_tools``/``json_schema`` are what the provider's API
accepts; a particular local model may still lack them (set model.native_tools=False)."""

KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    "deepseek-chat": 64_000,
    "deepseek-reasoner": 64_000,
    "qwen-plus": 131_072,
    "qwen-max": 32_768,
    "qwen-turbo": 1_000_000,
    "qwen-long": 10_000_000,
}


def split_model_name(spec: str) -> tuple[str, str]:
    """``"ollama:qwen2.5:7b"`` -> ``("ollama", "qwen2.5:7b")`` (only the first colon splits)."""
    provider, sep, model = spec.partition(":")
    if not sep or not model:
        raise ModelConfigError(
            f"model {spec!r} is not 'provider:model'; e.g. 'openai:gpt-4o-mini', "
            f"'deepseek:deepseek-chat', or 'embedded'. Providers: {', '.join(PROVIDERS)}"
        )
    if provider not in PROVIDERS:
        raise ModelConfigError(
            f"unknown provider {provider!r} in model {spec!r}; choose one of "
            f"{', '.join(PROVIDERS)} (use 'custom:<model>' with base_url for any other "
            "OpenAI-compatible endpoint)"
        )
    return provider, model


def context_window_for(model: str, provider: Provider) -> int:
    base = model.rsplit("/", 1)[-1]
    if base in KNOWN_CONTEXT_WINDOWS:
        return KNOWN_CONTEXT_WINDOWS[base]
    for known, window in sorted(KNOWN_CONTEXT_WINDOWS.items(), key=lambda kv: -len(kv[0])):
        if base.startswith(known):
            return window
    return provider.default_context_window


def resolve_api_key(provider: Provider, key_env: str | None, spec: str) -> str:
    """The API key from the configured env var, the provider's usual one, or
    ``DEEPFOLDER_API_KEY``; a local server without a key gets a placeholder."""
    candidates = [v for v in (key_env, provider.key_env, GENERIC_KEY_ENV) if v]
    for var in dict.fromkeys(candidates):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    if provider.key_env is None and key_env is None:
        return "not-needed"  # local servers (vllm, sglang, ollama, llama.cpp) accept any key
    wanted = key_env or provider.key_env or GENERIC_KEY_ENV
    raise ModelConfigError(
        f"no API key for {spec}: set the environment variable {wanted} "
        f"(or {GENERIC_KEY_ENV}), e.g. `export {wanted}=sk-...`"
    )


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    is_local = False

    def __init__(
        self,
        spec: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        api_key: str | None = None,
        native_tools: bool | None = None,
        context_window: int | None = None,
        timeout_s: float = 180.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        default_temperature: float | None = None,
        default_max_tokens: int | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        from openai import OpenAI  # imported here: `deepfolder --help` stays fast

        provider_name, model = split_model_name(spec)
        self.provider = PROVIDERS[provider_name]
        self.name = spec
        self.model = model
        self.base_url = (base_url or self.provider.base_url).rstrip("/")
        if not self.base_url:
            raise ModelConfigError(
                f"model {spec!r} needs a base URL: set model.base_url or DEEPFOLDER_BASE_URL "
                "to the endpoint (e.g. http://host:8000/v1)"
            )
        key = api_key or resolve_api_key(self.provider, api_key_env, spec)
        self.supports_native_tools = (
            self.provider.native_tools if native_tools is None else native_tools
        )
        self.context_window = context_window or context_window_for(model, self.provider)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.default_temperature = default_temperature
        self.default_max_tokens = default_max_tokens
        self.pacer = pacer
        """Spaces the requests and shares Retry-After holds (None: no pacing)."""
        self.retries_total = 0
        """Retries made by this model so far (all calls)."""
        self.on_retry: RetryListener | None = None
        """Told of each retry before its wait (see :func:`~deepfolder.llm.base.set_retry_listener`)."""
        self.usage = Usage()
        """Total usage reported by the endpoint over all calls."""
        self._client = OpenAI(api_key=key, base_url=self.base_url, timeout=timeout_s, max_retries=0)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    # --- one call ---------------------------------------------------------------------

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatResponse:
        check_model_request_allowed(self.name, self.base_url)
        request: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if tools:
            if not self.supports_native_tools:
                raise ModelConfigError(
                    f"{self.name} is configured without native tools; wrap it in "
                    "deepfolder.llm.text_protocol.TextToolModel"
                )
            request["tools"] = tools
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
        max_tokens = max_tokens or self.default_max_tokens
        if max_tokens:
            request["max_tokens"] = max_tokens
        temperature = self.default_temperature if temperature is None else temperature
        if temperature is not None:
            request["temperature"] = temperature
        if json_schema is not None:
            self._add_json_schema(request, json_schema)
        return self._request_with_retries(request, wants_json=json_schema is not None)

    def _add_json_schema(self, request: dict[str, Any], schema: dict[str, Any]) -> None:
        if self.provider.json_schema:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema, "strict": False},
            }
            return
        instruction = (
            "Reply with one JSON object only, no prose and no Markdown fence, that follows "
            "this JSON schema:\n" + json.dumps(schema, ensure_ascii=False)
        )
        request["messages"] = [*request["messages"], {"role": "system", "content": instruction}]
        if self.provider.json_object:
            request["response_format"] = {"type": "json_object"}

    def _request_with_retries(self, request: dict[str, Any], *, wants_json: bool) -> ChatResponse:
        import openai

        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            retry_after: float | None = None
            error: Exception
            if self.pacer is not None:
                self.pacer.wait_turn()
            try:
                raw = self._client.chat.completions.with_raw_response.create(**request)
                status = raw.http_response.status_code
                response = parse_completion(raw.http_response.text, wants_json=wants_json)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                reason, error = type(exc).__name__, exc
            except openai.APIStatusError as exc:
                if not _retryable_status(exc.status_code):
                    raise ModelError(
                        f"{self.name} at {self.base_url} answered HTTP {exc.status_code}: "
                        f"{_short(exc.message)}"
                    ) from exc
                status, reason, error = exc.status_code, f"HTTP {exc.status_code}", exc
                retry_after = _retry_after_seconds(exc.response.headers.get("retry-after"))
                if retry_after is not None and self.pacer is not None:
                    self.pacer.hold(retry_after)  # every client sharing the pacer waits too
            except MalformedReply as exc:
                reason, error = f"malformed reply (HTTP {status})", exc
            else:
                response.model = response.model or self.model
                self.usage = self.usage + response.usage
                return response
            if attempt > self.max_retries:
                raise ModelError(
                    f"{self.name} at {self.base_url} failed after {attempt} attempt(s): "
                    f"{reason}: {_short(str(error))}"
                ) from error
            self._wait_before_retry(attempt, reason, status, retry_after)

    def _wait_before_retry(
        self, attempt: int, reason: str, status: int | None, retry_after: float | None
    ) -> None:
        delay = self._backoff(attempt - 1, retry_after)
        self.retries_total += 1
        log.warning(
            "%s: %s; retry %d/%d in %.2fs", self.name, reason, attempt, self.max_retries, delay
        )
        if self.on_retry is not None:
            self.on_retry(
                RetryStep(
                    turn=0,
                    model=self.name,
                    attempt=attempt,
                    max_retries=self.max_retries,
                    reason=reason,
                    status=status,
                    wait_s=round(delay, 3),
                )
            )
        time.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        cap = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return random.uniform(cap / 2, cap)  # jitter: concurrent runs do not retry in step


class MalformedReply(ValueError):
    """A 200 reply whose body cannot be used; retried like a 5xx."""


def parse_completion(body: str, *, wants_json: bool = False) -> ChatResponse:
    """A ``chat.completion`` body as a ChatResponse, or :class:`MalformedReply` saying
    what is wrong with it. Only the first choice is used."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(body.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "cut off" if cut and body.lstrip().startswith("{") else "not JSON"
        raise MalformedReply(f"the body is {what} ({exc.msg}): {_short(body, 120)!r}") from exc
    if not isinstance(data, dict):
        raise MalformedReply(f"the body is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        error = data.get("error")
        if error:  # some gateways answer 200 with an error object
            detail = error.get("message", error) if isinstance(error, dict) else error
            raise MalformedReply(f"the body is an error: {_short(str(detail), 200)}")
        raise MalformedReply("the body has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedReply("the first choice has no message")
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise MalformedReply(f"tool_calls is a {type(raw_calls).__name__}, not a list")
    calls = _unique_ids([_tool_call_from_wire(c, i) for i, c in enumerate(raw_calls)])
    content = _content_text(message.get("content"))
    if wants_json and content:
        content = strip_json_fence(content)
    finish = choice.get("finish_reason")
    model = data.get("model")
    return ChatResponse(
        content=content,
        tool_calls=calls,
        usage=_usage(data.get("usage")),
        finish_reason=finish if isinstance(finish, str) and finish else _default_finish(calls),
        model=model if isinstance(model, str) else "",
    )


def _default_finish(calls: list[ToolCallRequest]) -> str:
    return "tool_calls" if calls else "stop"


def _content_text(content: Any) -> str | None:
    """Message content: a string, null, or a list of parts (only text parts are kept)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    raise MalformedReply(f"the message content is a {type(content).__name__}")


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return Usage(count("prompt_tokens"), count("completion_tokens"))


def _tool_call_from_wire(entry: Any, index: int) -> ToolCallRequest:
    """One ``tool_calls`` entry; anything wrong with it becomes ``parse_error``."""
    entry = entry if isinstance(entry, dict) else {}
    fn = entry.get("function")
    fn = fn if isinstance(fn, dict) else {}
    call_id = entry.get("id") if isinstance(entry.get("id"), str) else None
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raw = json.dumps(fn.get("arguments"), ensure_ascii=False, default=str)
        return ToolCallRequest(
            id=call_id or f"call_{index}",
            name="",
            raw_arguments=raw,
            parse_error=(
                f"tool call {index + 1} has no tool name (got {_short(repr(name), 60)}). "
                "Call a tool by its name, with its arguments as one JSON object."
            ),
        )
    return parse_tool_call(call_id or f"call_{index}", name.strip(), fn.get("arguments"))


def _unique_ids(calls: list[ToolCallRequest]) -> list[ToolCallRequest]:
    """Each tool result answers one call id, so repeated ids are made distinct."""
    seen: set[str] = set()
    for i, call in enumerate(calls):
        if call.id in seen:
            call.id = f"{call.id}_{i}"
        seen.add(call.id)
    return calls


def parse_tool_call(call_id: str | None, name: str, raw: Any) -> ToolCallRequest:
    """A native tool call; malformed arguments become ``parse_error``, not an exception.
    Arguments are normally a JSON string; an object sent as it is is accepted too."""
    if isinstance(raw, dict):
        return ToolCallRequest(
            id=call_id or f"call_{name}",
            name=name,
            arguments=raw,
            raw_arguments=json.dumps(raw, ensure_ascii=False),
        )
    if raw is not None and not isinstance(raw, str):
        text = json.dumps(raw, ensure_ascii=False, default=str)
        return ToolCallRequest(
            id=call_id or f"call_{name}",
            name=name,
            raw_arguments=text,
            parse_error=(
                f"the arguments of {name} must be a JSON object, got "
                f"{type(raw).__name__}: {_short(text, 200)}"
            ),
        )
    raw = raw or ""
    call = ToolCallRequest(id=call_id or f"call_{name}", name=name, raw_arguments=raw)
    if not raw.strip():
        return call  # no arguments: {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        call.parse_error = (
            f"the arguments of {name} are not valid JSON ({exc.msg} at character {exc.pos}): "
            f"{_short(raw, 200)}. Send the arguments as one JSON object."
        )
        return call
    if value is None:
        return call  # "null": no arguments, like an empty string
    if not isinstance(value, dict):
        call.parse_error = (
            f"the arguments of {name} must be a JSON object, got {type(value).__name__}: "
            f"{_short(raw, 200)}"
        )
        return call
    call.arguments = value
    return call


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def strip_json_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text.strip()


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
