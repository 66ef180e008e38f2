"""Serve a resumed run's model calls from its trace instead of sending them again.

A resumed run re-executes the interrupted one from the start: tools are recomputed
(they are deterministic over the same index, and evidence ids are content-derived), and
every model call whose request is the next one recorded in ``trace.jsonl`` gets the
recorded response back. A request is identified by the model's name, the hash of the
exact messages sent (``prompt_sha256`` of the trace) and the names of the tools offered.

The first request that does not match the next recorded one means the run has taken
another path (different evidence, a changed prompt): from there on every call goes to
the real model, and nothing more is replayed, so a replayed answer can never be served
for a question that was not asked.

Several wrapped models (the chat model, the vision model) share one :class:`ReplayLog`,
because the trace interleaves their calls in the order they were made.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deepfolder.llm.base import (
    ChatModel,
    ChatResponse,
    Message,
    ModelWrapper,
    ToolCallRequest,
    ToolSpec,
    tool_spec_name,
)
from deepfolder.records import Usage

PromptHash = Callable[[list[Message]], str]
"""The hash the trace records for the messages of a call (``agent.recording.prompt_hash``)."""


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One model call as the trace holds it: what identifies the request, and the reply."""

    model: str
    prompt_sha256: str
    tools: tuple[str, ...]
    response: ChatResponse

    @classmethod
    def from_trace(cls, record: dict[str, Any]) -> RecordedCall:
        """From a ``model_call`` line of ``trace.jsonl``."""
        usage = record.get("usage") or {}
        calls = [
            ToolCallRequest(
                id=str(c.get("id", "")),
                name=str(c.get("name", "")),
                arguments=dict(c.get("arguments") or {}),
                raw_arguments=str(c.get("raw_arguments") or ""),
                parse_error=c.get("parse_error"),
            )
            for c in record.get("tool_calls") or []
        ]
        response = ChatResponse(
            content=record.get("response_text"),
            tool_calls=calls,
            usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
            finish_reason=str(record.get("finish_reason") or "stop"),
            model=str(record.get("model", "")),
        )
        return cls(
            model=str(record.get("model", "")),
            prompt_sha256=str(record.get("prompt_sha256", "")),
            tools=tuple(record.get("tools") or ()),
            response=response,
        )


class ReplayLog:
    """The recorded calls in order, how many were served, and where the run diverged."""

    def __init__(self, calls: Sequence[RecordedCall], prompt_hash: PromptHash) -> None:
        self.calls = list(calls)
        self.prompt_hash = prompt_hash
        self.served = 0
        self.sent = 0
        """Calls that went to a real model (not in the log, or after the run diverged)."""
        self.diverged_at: int | None = None
        """Index of the recorded call the run did not ask for (None while on track)."""
        self.first_sent_at: float | None = None
        """``time.time()`` of the first call that went to a real model."""

    @property
    def exhausted(self) -> bool:
        """True once nothing more will be replayed (all served, or diverged)."""
        return self.diverged_at is not None or self.served >= len(self.calls)

    def take(
        self, model: str, messages: list[Message], tools: list[ToolSpec] | None
    ) -> ChatResponse | None:
        """The recorded reply when this request is the next recorded one, else None."""
        if self.exhausted:
            return None
        expected = self.calls[self.served]
        names = tuple(tool_spec_name(t) for t in tools or [])
        if (
            expected.model != model
            or expected.tools != names
            or expected.prompt_sha256 != self.prompt_hash(messages)
        ):
            self.diverged_at = self.served
            return None
        self.served += 1
        # a copy, so a caller appending to tool_calls cannot change the log
        return dataclasses.replace(expected.response, tool_calls=list(expected.response.tool_calls))


class ReplayingModel(ModelWrapper):
    """A :class:`ChatModel` that answers from a :class:`ReplayLog` while the requests
    match it, and asks ``inner`` once they do not (or the log is used up)."""

    def __init__(self, inner: ChatModel, log: ReplayLog) -> None:
        super().__init__(inner)
        self.log = log

    def __getattr__(self, name: str) -> Any:
        # backend-specific attributes (usage totals, retry counts) come from the real model
        if name == "inner":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        **kwargs: Any,
    ) -> ChatResponse:
        recorded = self.log.take(self.name, messages, tools)
        if recorded is not None:
            return recorded
        self.log.sent += 1
        if self.log.first_sent_at is None:
            self.log.first_sent_at = time.time()
        return self.inner.chat(messages, tools=tools, **kwargs)
