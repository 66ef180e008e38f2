"""Model calls and tool calls as step records: the one way every part of a run makes them.

The agent loop, the pipeline policy and the revisor make their calls through
:func:`model_call_step` and :func:`tool_call_steps`; the models called from inside
other code (the support judge, the vision model a tool asks) are wrapped in
:class:`RecordedModel`. So every model call in ``trace.jsonl`` carries the same fields
(start, duration, model, the messages sent, the tools offered, the reply, its tool
calls, usage, what the call was for, the hash of the messages), and every tool call is
a call step and a result step with its timing, whoever made it.

``prompt_sha256`` is the hash of the messages exactly as sent; a resumed run matches
its requests against it (``llm/replay.py``). The messages the trace keeps have each
base64 image replaced by its hash and size; the images themselves are listed where the
vision call was made.

Errors: bad tool arguments, unknown tools and malformed calls come back as
observations the model can fix; an exception inside a tool is an observation too (the
run goes on) and is also recorded as an error note. A model call that fails after its
retries raises; its retries are recorded by the run's retry listener, not here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Generator
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
from deepfolder.records import ModelCallStep, NoteStep, Step, ToolCallStep, ToolResultStep
from deepfolder.tools.base import (
    Tool,
    ToolArgumentError,
    ToolContext,
    ToolOutput,
    quote_observation,
)


def prompt_hash(messages: list[Message]) -> str:
    blob = json.dumps(messages, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def without_image_bytes(messages: list[Message]) -> list[Message]:
    """Messages for the trace with each base64 image replaced by its sha256 and size
    (the frames themselves are listed in vision_calls.jsonl / the tool observation)."""

    def shrink(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
            head, data = value.split(";base64,", 1)
            digest = hashlib.sha256(data.encode("ascii", "ignore")).hexdigest()[:16]
            return f"{head};sha256={digest};{len(data)} base64 characters omitted"
        if isinstance(value, dict):
            return {k: shrink(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shrink(v) for v in value]
        return value

    return [shrink(m) for m in messages]


def model_call_step(
    model: ChatModel,
    messages: list[Message],
    *,
    turn: int,
    purpose: str,
    tools: list[ToolSpec] | None = None,
    **options: Any,
) -> tuple[ChatResponse, ModelCallStep]:
    """Call ``model`` with ``messages`` (and ``tools``, ``options``); the reply and the
    call as a step for the caller to yield or record."""
    started = time.time()
    response = model.chat(messages, tools=tools, **options)
    step = ModelCallStep(
        turn=turn,
        at=started,
        duration=time.time() - started,
        model=model.name,
        messages=without_image_bytes(messages),
        tools=[tool_spec_name(t) for t in tools or []],
        response_text=response.content,
        tool_calls=[c.to_dict() for c in response.tool_calls],
        finish_reason=response.finish_reason,
        usage=response.usage,
        purpose=purpose,
        prompt_sha256=prompt_hash(messages),
    )
    return response, step


class RecordedModel(ModelWrapper):
    """A model whose every call is recorded with ``record`` as a step of the run: for
    the models other code calls (the support judge in validation, the vision model
    inside tools), which cannot yield steps themselves. ``turn`` says the current turn."""

    def __init__(
        self,
        inner: ChatModel,
        record: Callable[[Step], None],
        purpose: str,
        turn: Callable[[], int],
    ) -> None:
        super().__init__(inner)
        self.record = record
        self.purpose = purpose
        self.turn = turn

    def chat(
        self, messages: list[Message], *, tools: list[ToolSpec] | None = None, **options: Any
    ) -> ChatResponse:
        response, step = model_call_step(
            self.inner, messages, turn=self.turn(), purpose=self.purpose, tools=tools, **options
        )
        self.record(step)
        return response


def execute_tool(
    call: ToolCallRequest, tools: dict[str, Tool], ctx: ToolContext
) -> tuple[ToolOutput, str | None]:
    """Run one tool call. The model's mistakes come back as fixable observations; our own
    exceptions are reported too (the run goes on) and named as internal errors. Folder
    text in the observation is quoted as material (``quote_observation``)."""
    if call.parse_error:
        return ToolOutput(f"Malformed tool call: {call.parse_error}", is_error=True), None
    if not isinstance(call.arguments, dict):
        got = type(call.arguments).__name__
        text = f"Malformed tool call: the arguments of {call.name} must be a JSON object, got {got}"
        return ToolOutput(text, is_error=True), None
    tool = tools.get(call.name)
    if tool is None:
        known = ", ".join(sorted(tools))
        what = f"Unknown tool {call.name!r}" if call.name else "A tool call without a tool name"
        return ToolOutput(f"{what}. Tools: {known}", is_error=True), None
    try:
        return quote_observation(call.name, tool(ctx, call.arguments), ctx.status_line()), None
    except ToolArgumentError as exc:
        return ToolOutput(f"Error: {exc}", is_error=True), None
    except Exception as exc:  # an internal failure must not end the run; it is recorded
        detail = f"{type(exc).__name__}: {exc}"
        return ToolOutput(f"Internal error in {call.name}: {detail}", is_error=True), detail


def tool_call_steps(
    call: ToolCallRequest, tools: dict[str, Tool], ctx: ToolContext, *, turn: int
) -> Generator[Step, None, tuple[ToolOutput, str | None]]:
    """Run ``call`` as steps: the call (before it runs, so a crash leaves it in the
    trace), an error note when the tool itself failed, and the result with its timing.
    Returns the observation and the internal error (None when the tool did not fail)."""
    yield ToolCallStep(turn=turn, call_id=call.id, name=call.name, arguments=call.arguments)
    started = time.time()
    output, internal = execute_tool(call, tools, ctx)
    duration = time.time() - started
    if internal:
        yield NoteStep(turn=turn, message=f"tool {call.name} failed: {internal}", level="error")
    yield ToolResultStep(
        turn=turn,
        at=started,
        duration=duration,
        call_id=call.id,
        name=call.name,
        content=output.text,
        evidence_ids=[e.id for e in output.evidence],
        is_error=output.is_error,
    )
    return output, internal
