"""Optional LLM reranking of the top hits (no packaged multilingual cross-encoder exists).

``LLMReranker(model)`` is a ``reranker(query, results) -> results`` callable: it shows the
model the query and the first ``top_n`` passages (numbered, each cut to ``max_chars``)
and asks for the numbers of the relevant ones, most relevant first. Passages the model
names come first in its order; the others keep their retrieval order after them, so a
bad or empty answer never loses a result. One model call per query.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from deepfolder.llm.base import ChatModel, ModelError
from deepfolder.records import Evidence

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "array", "items": {"type": "integer"}}},
    "required": ["order"],
}
PROMPT = (
    "Rank passages by how well they answer the question. Reply with JSON "
    '{{"order": [numbers of the passages that help, best first]}} and nothing else.\n\n'
    "Question: {query}\n\n{passages}"
)


class LLMReranker:
    def __init__(self, model: ChatModel, *, top_n: int = 10, max_chars: int = 400) -> None:
        self.model = model
        self.top_n = top_n
        self.max_chars = max_chars

    def __call__(self, query: str, results: list[Evidence]) -> list[Evidence]:
        head, tail = results[: self.top_n], results[self.top_n :]
        if len(head) < 2:
            return results
        passages = "\n\n".join(
            f"[{i}] {ev.segment.text[: self.max_chars]}" for i, ev in enumerate(head, start=1)
        )
        message = {"role": "user", "content": PROMPT.format(query=query, passages=passages)}
        try:
            reply = self.model.chat([message], json_schema=ORDER_SCHEMA, temperature=0.0)
        except ModelError:
            return results
        order = _parse_order(reply.content or "", len(head))
        picked = [head[i - 1] for i in order]
        rest = [ev for i, ev in enumerate(head, start=1) if i not in order]
        reranked = picked + rest
        n = len(reranked)
        return [replace(ev, score=float(n - rank)) for rank, ev in enumerate(reranked)] + tail


def _parse_order(text: str, n: int) -> list[int]:
    """Distinct 1-based passage numbers from ``{"order": [...]}`` or any list of numbers."""
    numbers: list[int] = []
    try:
        data = json.loads(text)
        raw = data.get("order", []) if isinstance(data, dict) else data
        numbers = [int(x) for x in raw if isinstance(x, int | float | str) and str(x).isdigit()]
    except (json.JSONDecodeError, TypeError, ValueError):
        numbers = [int(x) for x in re.findall(r"\d+", text)]
    return [i for i in dict.fromkeys(numbers) if 1 <= i <= n]
