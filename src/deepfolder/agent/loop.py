"""The free agent loop (agent policy): the model plans, calls tools, decides when to answer.

``run_agent`` is a generator of typed step records. The caller records them (trace,
turns log, live progress); the loop itself keeps the conversation as OpenAI messages.
When turns or the token budget run out, the model is asked, without tools, for its best
answer from what it has, and the final step says the run was cut short. An empty reply
is answered once with a nudge; a second empty reply in a row ends the loop with an
empty final answer saying so (the runner fails such a run, it never ships it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from deepfolder.agent.context import fit_messages
from deepfolder.agent.prompts import CUT_SHORT, EMPTY_REPLY
from deepfolder.llm.base import ChatModel, ChatResponse, ToolCallRequest
from deepfolder.records import (
    FinalAnswerStep,
    ModelCallStep,
    NoteStep,
    Step,
    ToolCallStep,
    ToolResultStep,
    Usage,
)
from deepfolder.tools.base import (
    Tool,
    ToolArgumentError,
    ToolContext,
    ToolOutput,
    quote_observation,
)


@dataclass
class Conversation:
    """The messages of one run; the first two (system, task) are never dropped."""

    messages: list[dict[str, Any]]
    usage: Usage = field(default_factory=Usage)


def prompt_hash(messages: list[dict[str, Any]]) -> str:
    blob = json.dumps(messages, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def call_model(
    model: ChatModel,
    conv: Conversation,
    *,
    turn: int,
    tools: list[Tool] | None,
    keep_recent: int,
    max_tokens: int,
    purpose: str = "agent",
    ctx: ToolContext | None = None,
    **kwargs: Any,
) -> tuple[ChatResponse, ModelCallStep]:
    """One model call over the budgeted conversation, as a recorded step."""
    budget = max(1024, model.context_window - max_tokens - 256)
    fitted = fit_messages(
        conv.messages, budget=budget, count=model.count_tokens, keep_recent=keep_recent
    )
    started = time.time()
    response = model.chat(
        fitted,
        tools=[t.spec() for t in tools] if tools else None,
        max_tokens=max_tokens,
        **kwargs,
    )
    conv.usage = conv.usage + response.usage
    if ctx is not None:
        ctx.usage = ctx.usage + response.usage
    step = ModelCallStep(
        turn=turn,
        at=started,
        duration=time.time() - started,
        model=model.name,
        messages=fitted,
        tools=[t.name for t in tools or []],
        response_text=response.content,
        tool_calls=[c.to_dict() for c in response.tool_calls],
        finish_reason=response.finish_reason,
        usage=response.usage,
        purpose=purpose,
        prompt_sha256=prompt_hash(fitted),
    )
    return response, step


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


def run_agent(
    model: ChatModel,
    tools: list[Tool],
    ctx: ToolContext,
    conv: Conversation,
    *,
    max_turns: int,
    max_input_tokens: int,
    keep_recent: int,
    max_tokens: int,
) -> Iterator[Step]:
    by_name = {t.name: t for t in tools}
    empty_replies = 0
    for turn in range(1, max_turns + 1):
        response, step = call_model(
            model,
            conv,
            turn=turn,
            tools=tools,
            keep_recent=keep_recent,
            max_tokens=max_tokens,
            ctx=ctx,
        )
        yield step
        conv.messages.append(response.assistant_message())
        if not response.tool_calls:
            if (response.content or "").strip():
                yield FinalAnswerStep(turn=turn, text=response.content or "")
                return
            empty_replies += 1
            if empty_replies == 2:
                reason = "the model replied with nothing twice in a row"
                yield FinalAnswerStep(turn=turn, text="", cut_short=True, reason=reason)
                return
            conv.messages.append({"role": "user", "content": EMPTY_REPLY})
            continue
        empty_replies = 0
        for call in response.tool_calls:
            yield ToolCallStep(turn=turn, call_id=call.id, name=call.name, arguments=call.arguments)
            started = time.time()
            output, internal = execute_tool(call, by_name, ctx)
            if internal:
                yield NoteStep(
                    turn=turn, message=f"tool {call.name} failed: {internal}", level="error"
                )
            conv.messages.append({"role": "tool", "tool_call_id": call.id, "content": output.text})
            yield ToolResultStep(
                turn=turn,
                at=started,
                duration=time.time() - started,
                call_id=call.id,
                name=call.name,
                content=output.text,
                evidence_ids=[e.id for e in output.evidence],
                is_error=output.is_error,
            )
        if conv.usage.input_tokens >= max_input_tokens:
            yield from _final_without_tools(
                model, conv, ctx, turn + 1, "token budget", keep_recent, max_tokens
            )
            return
    yield from _final_without_tools(
        model, conv, ctx, max_turns + 1, "turn", keep_recent, max_tokens
    )


def _final_without_tools(
    model: ChatModel,
    conv: Conversation,
    ctx: ToolContext,
    turn: int,
    limit: str,
    keep_recent: int,
    max_tokens: int,
) -> Iterator[Step]:
    yield NoteStep(
        turn=turn, message=f"{limit} limit reached: asking for the final answer", level="warning"
    )
    conv.messages.append({"role": "user", "content": CUT_SHORT.format(limit=limit)})
    response, step = call_model(
        model,
        conv,
        turn=turn,
        tools=None,
        keep_recent=keep_recent,
        max_tokens=max_tokens,
        purpose="final answer",
        ctx=ctx,
    )
    yield step
    conv.messages.append(response.assistant_message())
    yield FinalAnswerStep(
        turn=turn, text=response.content or "", cut_short=True, reason=f"{limit} limit reached"
    )
