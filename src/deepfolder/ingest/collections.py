"""Article collections (``long_context*.json``) → one source per article.

A collection is a JSON list of ``{"title", "content" | "page_body" | "text", "url"?}``
or an object ``{"documents": [...]}`` of the same. It is streamed one article at a time
by ``jsonstream.iter_collection`` (depth and size budgets), so a file of tens of
thousands of pages is never held as parsed JSON and as segments at once. Article ``i`` (0-based position in the list) becomes
``Source(kind="article", id="<path>#i", article=i)`` with one segment
``Locator(article=i)``; the chunker turns it into ``Locator(article=i, chunk=n)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.ingest.jsonstream import SKIPPED, iter_collection
from deepfolder.records import Locator, Segment, Source
from deepfolder.settings import IngestSettings

BODY_KEYS = ("content", "page_body", "text", "body")


def iter_articles(
    path: Path, settings: IngestSettings | None = None
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(index, article object) in file order, streamed within the JSON budgets of
    ``settings`` (``None`` for an article over ``json_max_item_mb``)."""
    settings = settings or IngestSettings()
    items = iter_collection(
        path,
        max_depth=settings.json_max_depth,
        max_item_chars=int(settings.json_max_item_mb * 2**20),
    )
    for index, item in items:
        if item is SKIPPED:
            yield index, None
        else:
            yield index, item if isinstance(item, dict) else {"content": str(item)}


def extract_collection(path: Path, ctx: ExtractContext) -> ExtractResult:
    if ctx.size == 0 or path.stat().st_size == 0:
        raise ExtractError("file is empty (0 bytes)")
    sources: list[Source] = []
    segments: list[Segment] = []
    empty = oversized = 0
    for index, item in iter_articles(path, ctx.settings):
        if item is None:
            oversized += 1
            continue
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
    if oversized:
        warnings.append(
            f"{path.name}: {oversized} article(s) larger than ingest.json_max_item_mb = "
            f"{ctx.settings.json_max_item_mb:g} skipped"
        )
    return ExtractResult(sources, segments, warnings)
