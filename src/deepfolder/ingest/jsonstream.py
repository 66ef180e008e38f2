"""Streaming JSON with budgets: the one reader of article collections.

``ijson.items(fh, "item")`` builds a prefix string (``item.item.item…``) for every
nesting level and keeps one per open level, so memory grows with the *square* of the
depth: a 40 KB file of nested brackets took 1 GB and a 400 KB one 21 GB before the kernel
killed ingest. Here only ``ijson.basic_parse`` events (no prefixes) are read, and values
are built by a small stack machine that

- stops at ``max_depth`` open containers with ``JsonBudgetError`` (so a file of brackets
  is rejected after reading ``max_depth`` bytes of it), and
- stops *storing* an item once its strings pass ``max_item_chars`` (it is still parsed to
  its end and reported as skipped), so one huge article cannot take the memory of the rest.

``iter_collection`` is used by ingest (``collections.py``) and by ``deepfolder eval
retrieval --distractors``, so both read the same files the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from deepfolder.ingest.base import ExtractError

SKIPPED = object()
"""Returned by ``read_value`` for an item over its size budget."""

LIST_KEYS = ("documents", "data")
"""An object holding a collection keeps its list of articles under one of these keys."""


class JsonBudgetError(ExtractError):
    """The JSON is nested deeper than the budget allows."""


def _put(container: Any, key: str | None, value: Any) -> None:
    if isinstance(container, list):
        container.append(value)
    else:
        container[key] = value


def read_value(
    events: Iterator[tuple[str, Any]],
    event: str,
    value: Any,
    *,
    depth: int,
    max_depth: int,
    max_chars: int,
    name: str,
) -> Any:
    """The value starting at ``(event, value)``, ``depth`` containers deep; ``SKIPPED``
    when its strings exceed ``max_chars`` (0: skip it whatever its size)."""
    if event not in ("start_map", "start_array"):
        return value
    stack: list[Any] = []
    keys: list[str | None] = []
    chars = 0
    keep = max_chars > 0
    while True:
        if event in ("start_map", "start_array"):
            if depth + len(stack) + 1 > max_depth:
                raise JsonBudgetError(
                    f"{name} is nested more than {max_depth} levels deep; not read "
                    "(raise ingest.json_max_depth if it is genuine)"
                )
            stack.append({} if event == "start_map" else [])
            keys.append(None)
        elif event == "map_key":
            keys[-1] = value
            chars += len(value)
        elif event in ("end_map", "end_array"):
            done = stack.pop()
            keys.pop()
            if not stack:
                return done if keep else SKIPPED
            if keep:
                _put(stack[-1], keys[-1], done)
        else:
            if isinstance(value, str):
                chars += len(value)
            if keep and chars > max_chars:
                keep = False
                stack = [[] for _ in stack]  # drop what was built; keep only the shape
            if keep:
                _put(stack[-1], keys[-1], value)
        event, value = next(events)


def _open_events(fh: IO[bytes]) -> Iterator[tuple[str, Any]]:
    import ijson

    head = fh.read(3)
    if head != b"\xef\xbb\xbf":
        fh.seek(0)
    return iter(ijson.basic_parse(fh, use_float=True))


def iter_collection(
    path: Path, *, max_depth: int = 64, max_item_chars: int = 32 * 2**20
) -> Iterator[tuple[int, Any]]:
    """``(index, item)`` of a JSON list, or of the list under ``documents``/``data`` of a
    JSON object, in file order, streamed. An item over ``max_item_chars`` is yielded as
    ``SKIPPED`` (its index still counts). Raises ``ExtractError`` for an empty file,
    invalid JSON, a file that is not a list of items, or nesting beyond ``max_depth``."""
    import ijson

    name = path.name
    if path.stat().st_size == 0:
        raise ExtractError(f"{name} is empty (0 bytes)")
    with path.open("rb") as fh:
        events = _open_events(fh)
        try:
            first = next(events, None)
            if first is None:
                raise ExtractError(f"{name} holds no JSON value")
            depth = 1
            if first[0] == "start_map":
                depth = _enter_list(events, name, max_depth)
            elif first[0] != "start_array":
                raise ExtractError(_not_a_collection(name))
            for index, (event, value) in enumerate(events):
                if event == "end_array":
                    return
                yield (
                    index,
                    read_value(
                        events,
                        event,
                        value,
                        depth=depth,
                        max_depth=max_depth,
                        max_chars=max_item_chars,
                        name=name,
                    ),
                )
        except ijson.JSONError as exc:
            raise ExtractError(f"{name} is not valid JSON: {exc}") from exc


def _enter_list(events: Iterator[tuple[str, Any]], name: str, max_depth: int) -> int:
    """Inside a top-level object, advance to the start of its article list; its depth."""
    for event, value in events:
        if event == "end_map":
            break
        if event != "map_key":
            continue
        nxt, nxt_value = next(events)
        if value in LIST_KEYS and nxt == "start_array":
            return 2
        read_value(
            events, nxt, nxt_value, depth=1, max_depth=max_depth, max_chars=0, name=name
        )  # another key: skipped, but still within the depth budget
    raise ExtractError(_not_a_collection(name))


def _not_a_collection(name: str) -> str:
    return (
        f"{name} is not an article collection: expected a JSON list of "
        '{"title", "content"} objects or {"documents": [...]}'
    )


def check_depth(value: Any, max_depth: int, name: str) -> None:
    """``JsonBudgetError`` when an already parsed value nests deeper than ``max_depth``."""
    level: list[Any] = [value]
    depth = 0
    while level:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            return
        depth += 1
        if depth > max_depth:
            raise JsonBudgetError(
                f"{name} is nested more than {max_depth} levels deep; not read "
                "(raise ingest.json_max_depth if it is genuine)"
            )
        level = [item for c in containers for item in (c.values() if isinstance(c, dict) else c)]
