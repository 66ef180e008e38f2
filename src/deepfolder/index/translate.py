"""Translating short search queries, so a Chinese request finds an English source.

Lexical search cannot match "直接偏好优化的损失函数" against "the DPO loss", and the packaged
multilingual embedder ranks cross-script passages below same-script ones, so when the
request's language differs from a source's, searching with a translation as well finds
what the original query misses (measured in docs/benchmarks.md, "Search across
languages"). The model translates all queries of one need in one call, under a JSON
schema (a grammar for the embedded model) that keeps its output to a list of strings.

``translate_queries(model, queries, target_language)`` never raises for the model's
failures: a model error or an unusable reply gives ``[]`` and search goes on with the
original queries. Pass the result to ``search_many(..., translations=...)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from deepfolder.index.script import mainly_cjk
from deepfolder.llm.base import ChatModel, ModelError
from deepfolder.prompts.retrieval import translation_prompt

MAX_QUERY_CHARS = 200
"""Queries are short; a longer one is cut (the model only needs the gist)."""


def translation_schema(n: int) -> dict[str, object]:
    """A JSON object holding exactly ``n`` non-empty strings (an object, not a bare list,
    because OpenAI-compatible endpoints accept only objects as structured output)."""
    return {
        "type": "object",
        "properties": {
            "translations": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 300},
                "minItems": n,
                "maxItems": n,
            }
        },
        "required": ["translations"],
    }


def needs_translation(query: str, target_language: str) -> bool:
    """Whether the query is written in another script than the target language's
    (a Chinese query for English sources, or the reverse); same-script pairs are left
    alone (English and French share words, and both are searched lexically)."""
    cjk_target = target_language.split("-")[0].lower() in ("zh", "ja", "ko")
    return bool(query.strip()) and mainly_cjk(query) != cjk_target


def translate_queries(
    model: ChatModel,
    queries: Sequence[str],
    target_language: str,
    *,
    max_tokens: int = 400,
) -> list[str]:
    """Translations of ``queries`` into ``target_language`` (a code such as ``"en"`` or
    ``"zh"``, or a language name), one model call for all of them.

    Only queries written in another script than the target are sent; the result holds
    their translations in order, blank ones and ones equal to their query dropped. ``[]``
    when nothing needs translating, or when the model fails or replies with something
    that is not a list of strings.
    """
    todo = list(
        dict.fromkeys(
            q.strip()[:MAX_QUERY_CHARS] for q in queries if needs_translation(q, target_language)
        )
    )
    if not todo:
        return []
    prompt = translation_prompt(todo, target_language)
    try:
        reply = model.chat(
            [{"role": "user", "content": prompt}],
            json_schema=translation_schema(len(todo)),
            temperature=0.0,
            max_tokens=max_tokens,
        )
    except ModelError:
        return []
    originals = set(todo)
    parsed = parse_translations(reply.content or "")[: len(todo)]
    out = [
        keep_terms(q, t) if mainly_cjk(q) else t
        for q, t in zip(todo, parsed, strict=False)
        if t not in originals
    ]
    return list(dict.fromkeys(out))


_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#./-]*[A-Za-z0-9+#]|[A-Za-z]")


def keep_terms(query: str, translation: str) -> str:
    """The translation, plus the Latin-script terms of a CJK query that it lost.

    Names and abbreviations written in Latin letters inside a Chinese query ("Unlikelihood
    基线方法", "TL;DR 摘要") are usually the words the English source uses; the small model
    sometimes drops them ("Baseline method"), so they are appended.
    """
    have = translation.lower()
    lost = [t for t in dict.fromkeys(_TERM.findall(query)) if t.lower() not in have]
    return " ".join([translation, *lost]) if lost else translation


def parse_translations(text: str) -> list[str]:
    """The strings of ``{"translations": [...]}`` or of a bare JSON list (also when a
    Markdown fence or prose surrounds it); ``[]`` for anything else."""
    data: object = None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        match = re.search(r"\{.*\}|\[.*\]", text, re.S)
        if match:
            try:
                data = json.loads(match.group(0))
            except json.JSONDecodeError:
                return []
    if isinstance(data, dict):
        data = data.get("translations")
    if not isinstance(data, list):
        return []
    return [item.strip() for item in data if isinstance(item, str) and item.strip()]
