"""Other JSON files → structured text, one segment per top-level entry.

Each leaf becomes a line ``path.to.key: value``; the top-level key (or list position)
is the segment's ``Locator.section``. The file is also listed in ``Corpus.data_files``
so the analysis tool can load it whole. The file (at most ``MAX_JSON_MB``) is parsed
whole by the C parser, then rejected when nested deeper than ``ingest.json_max_depth``
(``_lines`` recurses once per level).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.ingest.jsonstream import JsonBudgetError, check_depth
from deepfolder.ingest.text import decode_text
from deepfolder.records import Locator, Segment, Source

MAX_JSON_MB = 64


def _lines(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append(f"{path}: {{}}")
        for key, item in value.items():
            _lines(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        if not value:
            out.append(f"{path}: []")
        for i, item in enumerate(value):
            _lines(item, f"{path}[{i}]", out)
    else:
        out.append(f"{path}: {json.dumps(value, ensure_ascii=False)}")


def extract_json(path: Path, ctx: ExtractContext) -> ExtractResult:
    if ctx.size > MAX_JSON_MB * 1024 * 1024:
        raise ExtractError(
            f"{path.name} is {ctx.size / 2**20:.0f} MB of JSON, more than {MAX_JSON_MB} MB; "
            "name it long_context*.json if it is a list of articles (streamed)"
        )
    if ctx.size == 0:
        raise ExtractError("file is empty (0 bytes)")
    text = decode_text(path.read_bytes(), path.name)
    depth_error = (
        f"{path.name} is nested more than {ctx.settings.json_max_depth} levels deep; not read "
        "(raise ingest.json_max_depth if it is genuine)"
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from exc
    except RecursionError as exc:  # deeper than the C parser's recursion limit
        raise JsonBudgetError(depth_error) from exc
    check_depth(data, ctx.settings.json_max_depth, path.name)
    if isinstance(data, dict):
        entries = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        entries = [(f"[{i}]", v) for i, v in enumerate(data)]
    else:
        entries = [("value", data)]
    segments: list[Segment] = []
    group: list[tuple[str, str]] = []  # small entries share a segment, up to one chunk

    def flush() -> None:
        if group:
            keys = group[0][0] if len(group) == 1 else f"{group[0][0]} … {group[-1][0]}"
            body = "\n".join(text for _, text in group)
            locator = Locator(section=keys)
            segments.append(Segment.create(ctx.rel_path, body, locator, seq=len(segments)))
            group.clear()

    size = 0
    for key, value in entries:
        lines: list[str] = []
        _lines(value, key, lines)
        body = "\n".join(lines).strip()
        if not body:
            continue
        if group and size + len(body) > ctx.settings.chunk_chars:
            flush()
            size = 0
        group.append((key, body))
        size += len(body) + 1
    flush()
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="json",
        title=path.name,
        sha256=ctx.sha256,
        size=ctx.size,
        meta={"entries": len(entries)},
    )
    return ExtractResult([source], segments, [])
