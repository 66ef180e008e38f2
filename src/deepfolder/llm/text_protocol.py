"""Tool calling through plain text, for models without native function calling.

The tools are described in the system prompt, and the model is asked to answer a call as

    <tool_call>{"name": "search", "arguments": {"query": "..."}}</tool_call>

which is also what Qwen2.5 models are trained to write. Small models drift from any
format, so :func:`parse_tool_calls` accepts what they actually produce: several blocks,
a missing closing tag, Markdown ```json fences holding ``{"name", "arguments"}``,
``parameters`` instead of ``arguments``, arguments given as a JSON *string*, trailing
commas, single quotes and Python literals. Whatever still does not parse becomes a
:class:`ToolCallRequest` with ``parse_error`` saying what to fix, so the agent can send
it back to the model as an observation instead of failing.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from deepfolder.llm.base import ChatModel, ChatResponse, Message, ToolCallRequest, ToolSpec

CALL_FORMAT = '<tool_call>{"name": "<tool name>", "arguments": {<arguments as JSON>}}</tool_call>'


def render_tools_prompt(
    tools: list[ToolSpec], tool_choice: str | dict[str, Any] | None = None
) -> str:
    """System-prompt text that lists the tools and the exact call format."""
    lines = [
        "# Tools",
        "",
        "You can call these tools. Each is given as a JSON schema of its arguments:",
        "",
    ]
    for spec in tools:
        fn = spec.get("function", spec)
        lines.append(f"## {fn['name']}")
        if fn.get("description"):
            lines.append(str(fn["description"]).strip())
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        lines.append("Arguments: " + json.dumps(params, ensure_ascii=False))
        lines.append("")
    lines += [
        "To call a tool, write exactly one line per call, in this format, and then stop:",
        CALL_FORMAT,
        "The arguments must be valid JSON with double quotes. You may write several "
        "<tool_call> lines to call several tools. Tool results come back in "
        "<tool_response> blocks. When you have what you need, answer without <tool_call>.",
    ]
    if tool_choice == "required":
        lines.append("You must call at least one tool now.")
    elif tool_choice == "none":
        lines.append("Do not call any tool now; answer directly.")
    elif isinstance(tool_choice, dict):
        forced = tool_choice.get("function", {}).get("name")
        if forced:
            lines.append(f"You must call the tool {forced} now.")
    return "\n".join(lines)


# --- parsing ----------------------------------------------------------------------------

_TAG_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|\Z)", re.DOTALL)
_FENCE_BLOCK = re.compile(r"```[a-zA-Z_]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_NAME_GUESS = re.compile(r"""["']?name["']?\s*[:=]\s*["']([\w.\-]+)["']""")


def parse_tool_calls(text: str | None) -> tuple[str, list[ToolCallRequest]]:
    """Split a reply into (text without the calls, the calls in order)."""
    if not text:
        return "", []
    calls: list[ToolCallRequest] = []
    spans: list[tuple[int, int]] = []
    for match in _TAG_BLOCK.finditer(text):
        calls.append(_parse_block(match.group(1), len(calls)))
        spans.append(match.span())
    if not calls:
        for match in _FENCE_BLOCK.finditer(text):
            value = _lenient_json(_first_json_object(match.group(1)) or "")
            if _looks_like_call(value):
                calls.append(_parse_block(match.group(1), len(calls)))
                spans.append(match.span())
    if not calls:  # the whole reply may be one bare JSON call
        stripped = text.strip()
        if stripped.startswith("{") and _looks_like_call(_lenient_json(stripped)):
            return "", [_parse_block(stripped, 0)]
    remaining = text
    for start, end in reversed(spans):
        remaining = remaining[:start] + remaining[end:]
    return remaining.strip(), calls


def _looks_like_call(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "name" in value
        and ("arguments" in value or "parameters" in value or len(value) == 1)
    )


def _parse_block(block: str, index: int) -> ToolCallRequest:
    call_id = f"call_{index}"
    raw_object = _first_json_object(block)
    if raw_object is None:
        return ToolCallRequest(
            id=call_id,
            name=_guess_name(block),
            raw_arguments=block.strip(),
            parse_error=("the tool call holds no JSON object. Write it as " + CALL_FORMAT),
        )
    value = _lenient_json(raw_object)
    if not isinstance(value, dict):
        return ToolCallRequest(
            id=call_id,
            name=_guess_name(raw_object),
            raw_arguments=raw_object,
            parse_error=(
                "the tool call is not valid JSON (use double quotes, no trailing commas). "
                f"Got: {raw_object[:200]}. Write it as {CALL_FORMAT}"
            ),
        )
    if "function" in value and isinstance(value["function"], dict):  # OpenAI-shaped
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return ToolCallRequest(
            id=call_id,
            name="",
            raw_arguments=raw_object,
            parse_error=f'the tool call has no "name". Write it as {CALL_FORMAT}',
        )
    args: Any = value.get("arguments", value.get("parameters", {}))
    raw_args = json.dumps(args, ensure_ascii=False) if not isinstance(args, str) else args
    if isinstance(args, str):  # arguments sent as a JSON string
        args = _lenient_json(args) if args.strip() else {}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return ToolCallRequest(
            id=call_id,
            name=name,
            raw_arguments=raw_args,
            parse_error=(
                f'the "arguments" of {name} must be a JSON object such as {{"query": "..."}}, '
                f"got: {raw_args[:200]}"
            ),
        )
    return ToolCallRequest(id=call_id, name=name, arguments=args, raw_arguments=raw_args)


def _guess_name(text: str) -> str:
    match = _NAME_GUESS.search(text)
    return match.group(1) if match else ""


def _first_json_object(text: str) -> str | None:
    """The first balanced ``{...}`` in ``text`` (respecting quoted strings); an object
    cut off at the end is closed with the missing braces."""
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    quote: str | None = None
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    if quote:
        return None  # an unterminated string cannot be repaired safely
    return text[start:].rstrip().rstrip(",") + "}" * depth


_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_JSON_LITERALS = re.compile(r"\b(true|false|null)\b")


def _lenient_json(text: str) -> Any:
    """``json.loads``, then with trailing commas removed, then as a Python literal
    (single quotes, True/None); None when nothing works."""
    if not text:
        return None
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    pythonish = _JSON_LITERALS.sub(
        lambda m: {"true": "True", "false": "False", "null": "None"}[m.group(1)],
        _TRAILING_COMMA.sub(r"\1", text),
    )
    try:
        return ast.literal_eval(pythonish)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


# --- the wrapper model ----------------------------------------------------------------


_TOOL_RESPONSE_TAG = re.compile(r"[<＜](?=\s*/?\s*tool_(?:response|call))", re.IGNORECASE)
"""A tag-like ``<tool_response`` / ``<tool_call`` inside a tool result: made inert, so
folder text can neither end its response block early nor forge a call."""


def messages_as_text_turns(messages: list[Message]) -> list[Message]:
    """Earlier native tool calls and tool results as plain text turns in the protocol."""
    out: list[Message] = []
    for msg in messages:
        role = msg.get("role")
        if role == "assistant" and msg.get("tool_calls"):
            parts = [msg.get("content") or ""]
            for call in msg["tool_calls"]:
                fn = call.get("function", {})
                args = _lenient_json(fn.get("arguments") or "{}")
                payload = {
                    "name": fn.get("name", ""),
                    "arguments": args if args is not None else fn.get("arguments", ""),
                }
                parts.append(f"<tool_call>{json.dumps(payload, ensure_ascii=False)}</tool_call>")
            out.append({"role": "assistant", "content": "\n".join(p for p in parts if p)})
        elif role == "tool":
            name = msg.get("name") or msg.get("tool_call_id") or "tool"
            content = _TOOL_RESPONSE_TAG.sub("‹", str(msg.get("content") or ""))
            text = f'<tool_response name="{name}">\n{content}\n</tool_response>'
            if out and out[-1]["role"] == "user" and "<tool_response" in out[-1]["content"]:
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + text}
            else:
                out.append({"role": "user", "content": text})
        else:
            out.append(dict(msg))
    return out


class TextToolModel:
    """Gives any ChatModel tool calling through the text ``<tool_call>`` protocol.

    From the caller's side tools work as with a native model (``chat(tools=...)`` returns
    ``tool_calls``), so ``supports_native_tools`` is True; ``text_protocol`` marks that
    the calls travel as text.
    """

    text_protocol = True
    supports_native_tools = True

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window
        self.is_local = inner.is_local

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

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
        turns = messages_as_text_turns(messages)
        if tools and tool_choice != "none":
            prompt = render_tools_prompt(tools, tool_choice)
            if turns and turns[0].get("role") == "system":
                turns[0] = {**turns[0], "content": f"{turns[0].get('content') or ''}\n\n{prompt}"}
            else:
                turns.insert(0, {"role": "system", "content": prompt})
        reply = self.inner.chat(
            turns, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema
        )
        if not tools or tool_choice == "none" or json_schema is not None:
            return reply
        text, calls = parse_tool_calls(reply.content)
        return ChatResponse(
            content=text or None,
            tool_calls=calls,
            usage=reply.usage,
            finish_reason="tool_calls" if calls else reply.finish_reason,
            model=reply.model,
        )
