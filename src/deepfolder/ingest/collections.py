"""Article collections (``long_context*.json``) → one source per article.

A collection is a JSON list of ``{"title", "content" | "page_body" | "text", "url"?}``
or an object ``{"documents": [...]}`` of the same. It is streamed with ijson, one article
at a time, so a file of tens of thousands of pages is never held as parsed JSON and as
segments at once. Article ``i`` (0-based position in the list) becomes
``Source(kind="article", id="<path>#i", article=i)`` with one segment
``Locator(article=i)``; the chunker turns it into ``Locator(article=i, chunk=n)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Locator, Segment, Source

BODY_KEYS = ("content", "page_body", "text", "body")


def _items_prefix(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return "item"
    if head.startswith(b"{"):
        return "documents.item"
    raise ExtractError(
        f"{path.name} is not an article collection: expected a JSON list of "
        '{"title", "content"} objects or {"documents": [...]}'
    )


def iter_articles(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, article object) in file order, streamed."""
    import ijson

    prefix = _items_prefix(path)
    with path.open("rb") as fh:
        data = fh.read(3)
        if data != b"\xef\xbb\xbf":
            fh.seek(0)
        try:
            for index, item in enumerate(ijson.items(fh, prefix, use_float=True)):
                yield index, item if isinstance(item, dict) else {"content": str(item)}
        except ijson.JSONError as exc:
            raise ExtractError(f"{path.name} is not valid JSON: {exc}") from exc


def extract_collection(path: Path, ctx: ExtractContext) -> ExtractResult:
    if ctx.size == 0 or path.stat().st_size == 0:
        raise ExtractError("file is empty (0 bytes)")
    sources: list[Source] = []
    segments: list[Segment] = []
    empty = 0
    for index, item in iter_articles(path):
        body = next((item[k] for k in BODY_KEYS if isinstance(item.get(k), str)), "")
        title = str(item.get("title") or "").strip()
        url = item.get("url") if isinstance(item.get("url"), str) else None
        source_id = f"{ctx.rel_path}#{index}"
        sources.append(
            Source(
                id=source_id,
                path=ctx.rel_path,
                kind="article",
                title=title,
                url=url,
                article=index,
                sha256=ctx.sha256,
                meta={"chars": len(body)},
            )
        )
        text = body.strip()
        if not text and title:
            text = title
        if not text:
            empty += 1
            continue
        segments.append(Segment.create(source_id, text, Locator(article=index), seq=0))
    if not sources:
        raise ExtractError(f"{path.name} holds no articles (an empty JSON list)")
    warnings = [f"{path.name}: {empty} article(s) without text"] if empty else []
    return ExtractResult(sources, segments, warnings)
