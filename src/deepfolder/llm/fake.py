"""Fake chat models for tests, shipped in the package so every layer can use them.

- :class:`ScriptedModel` replays a queue of replies, one per call, and records the calls.
- :class:`FunctionModel` computes each reply with ``fn(messages, tools)``.

Both implement the :class:`~deepfolder.llm.base.ChatModel` protocol; usage is the
heuristic token estimate of the prompt and the reply, so budgets and cost accounting
are exercised too. (Modelled on pydantic-ai's ``FunctionModel`` / ``TestModel``.)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

from deepfolder.llm.base import ChatResponse, Message, ModelError, ToolCallRequest, ToolSpec
from deepfolder.llm.tokens import estimate_message_tokens, estimate_tokens
from deepfolder.records import Usage

ReplyFn = Callable[[list[Message], list[ToolSpec] | None], "ChatResponse | str"]


def tool_call(name: str, arguments: dict[str, Any] | None = None, *, id: str = "") -> ChatResponse:
    """A reply that asks for one tool call: ``tool_call("search", {"query": "x"})``."""
    args = arguments or {}
    call = ToolCallRequest(
        id=id or f"call_{name}",
        name=name,
        arguments=args,
        raw_arguments=json.dumps(args, ensure_ascii=False),
    )
    return ChatResponse(content=None, tool_calls=[call], finish_reason="tool_calls")


class _FakeBase:
    """Shared bookkeeping: call recording, usage estimation, the protocol attributes."""

    def __init__(
        self,
        *,
        name: str,
        context_window: int,
        is_local: bool,
        supports_native_tools: bool,
    ) -> None:
        self.name = name
        self.context_window = context_window
        self.is_local = is_local
        self.supports_native_tools = supports_native_tools
        self.calls: list[tuple[list[Message], list[ToolSpec] | None, dict[str, Any]]] = []
        self.usage = Usage()
        """Total estimated usage of every call so far."""

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

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
        kwargs = {
            "tool_choice": tool_choice,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "json_schema": json_schema,
        }
        # Copies, so a caller mutating its conversation later does not rewrite history.
        self.calls.append(
            ([dict(m) for m in messages], list(tools) if tools else tools, dict(kwargs))
        )
        return self._finish(self._reply(messages, tools, kwargs), messages, tools)

    def _reply(
        self, messages: list[Message], tools: list[ToolSpec] | None, kwargs: dict[str, Any]
    ) -> ChatResponse | str:
        """The scripted or computed reply to one call (recorded before it is asked)."""
        raise NotImplementedError

    def _finish(
        self, reply: ChatResponse | str, messages: list[Message], tools: list[ToolSpec] | None
    ) -> ChatResponse:
        if isinstance(reply, str):
            reply = ChatResponse(content=reply)
        if not isinstance(reply, ChatResponse):
            raise TypeError(
                f"{self.name}: a scripted reply must be a ChatResponse, a str or a callable "
                f"returning one, got {type(reply).__name__}"
            )
        reply = dataclasses.replace(reply, tool_calls=list(reply.tool_calls))
        if reply.usage == Usage():
            prompt = estimate_message_tokens(messages)
            if tools:
                prompt += estimate_tokens(json.dumps(tools, ensure_ascii=False))
            output = estimate_tokens(reply.content or "") + sum(
                estimate_tokens(c.raw_arguments or json.dumps(c.arguments))
                for c in reply.tool_calls
            )
            reply.usage = Usage(prompt, output)
        if not reply.model:
            reply.model = self.name
        if reply.tool_calls and reply.finish_reason == "stop":
            reply.finish_reason = "tool_calls"
        self.usage = self.usage + reply.usage
        return reply


class ScriptedModel(_FakeBase):
    """Replies from a queue: each item is a ChatResponse, a str (final text) or a
    callable ``(messages, tools) -> ChatResponse | str``.

    Raises :class:`ModelError` when a call finds the queue empty, naming how many calls
    were scripted, so a test whose agent loops longer than expected fails clearly.
    """

    def __init__(
        self,
        responses: Iterable[ChatResponse | str | ReplyFn],
        *,
        name: str = "fake:scripted",
        context_window: int = 32768,
        is_local: bool = False,
        supports_native_tools: bool = True,
    ) -> None:
        super().__init__(
            name=name,
            context_window=context_window,
            is_local=is_local,
            supports_native_tools=supports_native_tools,
        )
        self.responses: list[ChatResponse | str | ReplyFn] = list(responses)
        self._scripted = len(self.responses)

    @property
    def remaining(self) -> int:
        return len(self.responses)

    def _reply(
        self, messages: list[Message], tools: list[ToolSpec] | None, kwargs: dict[str, Any]
    ) -> ChatResponse | str:
        if not self.responses:
            raise ModelError(
                f"{self.name}: scripted responses exhausted: call {len(self.calls)} but only "
                f"{self._scripted} response(s) were scripted. Add responses to the "
                "ScriptedModel or check why the caller made an extra model call."
            )
        item = self.responses.pop(0)
        return item(messages, tools) if callable(item) else item


class FunctionModel(_FakeBase):
    """Replies computed by ``fn(messages, tools) -> ChatResponse | str``.

    When ``fn`` accepts a third parameter it also gets the call's keyword arguments
    (``tool_choice``, ``max_tokens``, ``temperature``, ``json_schema``) as a dict.
    """

    def __init__(
        self,
        fn: Callable[..., ChatResponse | str],
        *,
        name: str = "fake:function",
        context_window: int = 32768,
        is_local: bool = False,
        supports_native_tools: bool = True,
    ) -> None:
        super().__init__(
            name=name,
            context_window=context_window,
            is_local=is_local,
            supports_native_tools=supports_native_tools,
        )
        self.fn = fn
        self._wants_kwargs = _positional_arity(fn) >= 3

    def _reply(
        self, messages: list[Message], tools: list[ToolSpec] | None, kwargs: dict[str, Any]
    ) -> ChatResponse | str:
        return self.fn(messages, tools, kwargs) if self._wants_kwargs else self.fn(messages, tools)


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 3
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
