"""A fast token estimate for budgeting prompts when no tokenizer is at hand.

Remote models and the fake models count with :func:`estimate_tokens`; the embedded model
counts exactly with its own tokenizer. The ratios below were measured with the
Qwen2.5-Coder GGUF tokenizer (see docs/notes/llm.md): Chinese text runs close to one
token per 1.4 CJK characters, English prose about 4.2 characters per token, and code /
JSON punctuation closer to one token per 2.5 characters. The estimate errs slightly
high, which is the safe side for a context budget.
"""

from __future__ import annotations

import re
from typing import Any

CJK_CHARS_PER_TOKEN = 1.5
"""Qwen2.5 tokenizer on Chinese prose (measured; see docs/notes/llm.md)."""
LATIN_CHARS_PER_TOKEN = 4.8
"""Qwen2.5 tokenizer on English prose (letters, digits and spaces)."""
SYMBOL_CHARS_PER_TOKEN = 1.5
"""Punctuation and other symbols (JSON, code, Markdown markup)."""

_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u3000-\u303f\uff00-\uffef]"
)
_LATIN = re.compile(r"[A-Za-z\s]")
_DIGIT = re.compile(r"[0-9]")


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` for Qwen/GPT-style BPE tokenizers."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    digits = len(_DIGIT.findall(text))  # Qwen's tokenizer splits numbers into single digits
    other = len(text) - cjk - latin - digits
    estimate = cjk / CJK_CHARS_PER_TOKEN + latin / LATIN_CHARS_PER_TOKEN + digits
    estimate += other / SYMBOL_CHARS_PER_TOKEN
    return max(1, round(estimate))


def estimate_message_tokens(messages: list[dict[str, Any]]) -> int:
    """Approximate prompt tokens of a chat: content, tool calls and ~4 tokens per message
    for the role markers of the chat template."""
    total = 0
    for msg in messages:
        total += 4
        content = msg.get("content")
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):  # multimodal parts
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += estimate_tokens(part["text"])
                else:
                    total += 85  # an image part, as OpenAI counts a low-detail image
        for call in msg.get("tool_calls") or []:
            if isinstance(call, dict):
                fn = call.get("function") or {}
                total += estimate_tokens(str(fn.get("name", "")))
                total += estimate_tokens(str(fn.get("arguments", "")))
    return total
