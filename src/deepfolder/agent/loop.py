"""The free agent loop (agent policy): the model plans, calls tools, decides when to answer.

``run_agent`` is a generator of typed step records. The caller records them (trace,
turns log, live progress); the loop itself keeps the conversation as OpenAI messages.
When turns or the token budget run out, the model is asked, without tools, for its best
answer from what it has, and the final step says the run was cut short. An empty reply
is answered once with a nudge; a second empty reply in a row ends the loop with an
empty final answer saying so (the runner fails such a run, it never ships it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from deepfolder.agent.context import fit_messages
from deepfolder.agent.recording import model_call_step, tool_call_steps
from deepfolder.agent.state import Conversation
from deepfolder.llm.base import ChatModel, ChatResponse
from deepfolder.prompts.writing import CUT_SHORT, EMPTY_REPLY
from deepfolder.records import FinalAnswerStep, ModelCallStep, NoteStep, Step
from deepfolder.tools.base import Tool, ToolContext


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
    """One model call over the budgeted conversation, as a recorded step; its usage is
    added to the conversation's (and the tool context's) running total."""
    budget = max(1024, model.context_window - max_tokens - 256)
    fitted = fit_messages(
        conv.messages, budget=budget, count=model.count_tokens, keep_recent=keep_recent
    )
    response, step = model_call_step(
        model,
        fitted,
        turn=turn,
        purpose=purpose,
        tools=[t.spec() for t in tools] if tools else None,
        max_tokens=max_tokens,
        **kwargs,
    )
    conv.usage = conv.usage + response.usage
    if ctx is not None:
        ctx.usage = ctx.usage + response.usage
    return response, step


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
            output, _ = yield from tool_call_steps(call, by_name, ctx, turn=turn)
            conv.messages.append({"role": "tool", "tool_call_id": call.id, "content": output.text})
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
