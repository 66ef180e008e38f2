"""The one chat interface every backend implements (remote, embedded, fake).

Messages are OpenAI-format dicts (``role``, ``content``, ``tool_calls``,
``tool_call_id``), because every supported endpoint speaks that protocol. Tools are
OpenAI ``{"type": "function", "function": {name, description, parameters}}`` dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from deepfolder.records import RetryStep, Usage

Message = dict[str, Any]
ToolSpec = dict[str, Any]
RetryListener = Callable[[RetryStep], None]
"""Told of every retry a remote model makes (the run's recorder turns them into steps)."""


def tool_spec_name(spec: ToolSpec) -> str:
    """The function name a tool spec offers ("" for a spec without one)."""
    function = spec.get("function") if isinstance(spec, dict) else None
    return str((function or {}).get("name", ""))


class ModelError(RuntimeError):
    """Infrastructure failure talking to a model (after retries): not the model's mistake."""


class ModelConfigError(ValueError):
    """The model is mis-configured (unknown provider, missing key, missing package)."""


@dataclass(slots=True)
class ToolCallRequest:
    """A tool call as the model asked for it.

    ``arguments`` is the parsed JSON object; when the model wrote something that does not
    parse, ``arguments`` is empty and ``parse_error`` says what is wrong, so the agent can
    send that back to the model as an observation it can fix.
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str = ""
    parse_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "raw_arguments": self.raw_arguments,
            "parse_error": self.parse_error,
        }


@dataclass(slots=True)
class ChatResponse:
    content: str | None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    model: str = ""

    def assistant_message(self) -> Message:
        """The message to append to the conversation for this reply."""
        msg: Message = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.raw_arguments},
                }
                for c in self.tool_calls
            ]
        return msg


@runtime_checkable
class ChatModel(Protocol):
    name: str
    """``provider:model`` as the user configured it."""
    context_window: int
    supports_native_tools: bool
    is_local: bool
    """True for in-process/small models: the pipeline policy is chosen for them."""

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
        """One model call. ``json_schema`` asks for output constrained to that schema
        (grammar for the embedded model, response_format for endpoints that support it)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (exact when the model has a tokenizer)."""
        ...


class ModelWrapper:
    """Base of a model that sends its calls on to ``inner`` (replaying, recording): it
    is the inner model by name, context window, capabilities and token count, and keeps
    it in ``.inner`` so :func:`set_retry_listener` reaches it."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window
        self.supports_native_tools = inner.supports_native_tools
        self.is_local = inner.is_local

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def set_retry_listener(model: object, listener: RetryListener | None) -> bool:
    """Let ``listener`` hear every retry of ``model``, through any wrappers that keep the
    wrapped model in ``.inner`` (the text tool protocol, recording wrappers). Models that
    never retry (embedded, fake) have no ``on_retry``; False says none was found."""
    found = False
    seen: set[int] = set()
    current: object | None = model
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if hasattr(current, "on_retry"):
            setattr(current, "on_retry", listener)  # noqa: B010 (any model class)
            found = True
        current = getattr(current, "inner", None)
    return found
