"""Keep the prompt inside the model's window.

The first two messages (system prompt and the task: request + folder summary) are never
dropped. When the conversation grows past the budget, old tool results are shortened
first (the most recent ``keep_recent`` stay whole), then whole old exchanges (an
assistant turn with its tool results) are dropped, oldest first, with a note left in
their place. Documents are never inlined: the model reads them through tools.
A shortened result keeps its ``<material>`` blocks closed, so the folder text left in it
is still marked as quoted data.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from deepfolder.prompts.material import MATERIAL_TAG
from deepfolder.prompts.writing import SHORTENED_NOTE, dropped_exchanges_note

Message = dict[str, Any]
SHORTENED_CHARS = 300


def shorten_observation(content: str, chars: int = SHORTENED_CHARS) -> str:
    """The first ``chars`` of a tool result, with a material block cut in the middle
    closed again (quoted text cannot contain a real tag, so counting tags is exact)."""
    head = content[:chars].rstrip()
    cut_tag = head.rfind("<")
    if cut_tag > head.rfind(">"):  # do not leave half a tag behind
        head = head[:cut_tag].rstrip()
    if head.count(f"<{MATERIAL_TAG}") > head.count(f"</{MATERIAL_TAG}>"):
        head += f"\n</{MATERIAL_TAG}>"
    return f"{head}\n{SHORTENED_NOTE}"


def message_tokens(msg: Message, count: Callable[[str], int]) -> int:
    text = msg.get("content") or ""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    calls = msg.get("tool_calls")
    if calls:
        text += json.dumps(calls, ensure_ascii=False)
    return count(text) + 4


def fit_messages(
    messages: list[Message],
    *,
    budget: int,
    count: Callable[[str], int],
    keep_recent: int = 4,
) -> list[Message]:
    """A copy of ``messages`` whose token count is within ``budget`` when possible."""
    fitted = copy.deepcopy(messages)

    def total() -> int:
        return sum(message_tokens(m, count) for m in fitted)

    if total() <= budget:
        return fitted
    tool_positions = [i for i, m in enumerate(fitted) if m.get("role") == "tool"]
    for i in tool_positions[: max(0, len(tool_positions) - keep_recent)]:
        content = fitted[i].get("content") or ""
        if len(content) > SHORTENED_CHARS:
            fitted[i]["content"] = shorten_observation(content)
        if total() <= budget:
            return fitted
    # Drop whole exchanges after the protected head (system + task), oldest first.
    dropped = 0
    while total() > budget and len(fitted) > 3:
        start = 2
        end = start + 1
        while end < len(fitted) and fitted[end].get("role") == "tool":
            end += 1
        if end >= len(fitted):
            break
        del fitted[start:end]
        dropped += 1
    if dropped:
        fitted.insert(
            2,
            {"role": "user", "content": dropped_exchanges_note(dropped)},
        )
    return fitted
