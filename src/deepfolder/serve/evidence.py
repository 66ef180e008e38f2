"""One evidence id → what the side pane shows: the exact page, second, rows or passage.

:func:`evidence_view` returns a JSON-ready dict whose ``view`` says how to show it:

- ``pdf``: the cited page rendered server-side (:func:`render_pdf_page`) and the boxes of
  the passage on it, in fractions of the page, found in pdfium's own text of the page
  (whitespace ignored, since the extractor joins wrapped lines; line by line when the
  whole passage is not found);
- ``media``: the file's URL with the cited window (``start``/``end``) and the window's
  transcript and on-screen text;
- ``sheet``: the cited rows, read again from the file, with their header;
- ``document``: the article (or text file) the chunk comes from, split into the text
  before, the chunk and the text after, so the page can highlight and scroll to it;
- ``image``: the image and its OCR text; ``computed``: the code and its output
  (a figure also shows its picture); ``text``: the passage alone.

Files are found only through the evidence record: a run's own files (``run:`` sources,
figures and analyses) under the run directory, the user's files under the folder the
run names in ``run.json``. A path that leaves its base directory is refused
(:class:`EvidenceFileError`).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from deepfolder.ingest.collections import BODY_KEYS, iter_articles
from deepfolder.ingest.sheets import read_tables
from deepfolder.records import Evidence
from deepfolder.serve.catalog import RunDir

MEDIA_KINDS = {"video", "audio"}
FILE_KINDS = {"video", "audio", "image", "figure", "pdf"}
"""Kinds whose source file the browser loads (a PDF only as its rendered pages)."""
TEXT_FILE_KINDS = {"text", "markdown"}
MAX_SHEET_ROWS = 200
PAGE_SCALE = 1.5
"""Rendered page pixels per PDF point (a 595-point A4 page → 893 pixels wide)."""
MIN_LINE_MATCH = 4
"""Characters a passage line needs before it is searched for on the page alone."""

_PDFIUM_LOCK = threading.Lock()
"""pdfium is not thread-safe and the server answers from a thread pool."""
_PAGE_CACHE: OrderedDict[tuple[str, float, int], bytes] = OrderedDict()
PAGE_CACHE_SIZE = 64


class EvidenceFileError(Exception):
    """The evidence has no file the viewer may serve; the message says why."""


def source_file(run: RunDir, ev: Evidence) -> Path:
    """The file an evidence record comes from, inside the run directory or its folder."""
    source = ev.source
    folder = run.folder()
    if source.id.startswith("run:"):
        base = run.path
    elif folder is not None:
        base = folder
    else:
        raise EvidenceFileError(f"run {run.path.name} names no input folder in run.json")
    if "!/" in source.id:
        raise EvidenceFileError(f"{source.id} is a member of an archive; its text is shown")
    rel = Path(source.path)
    if rel.is_absolute() or ".." in rel.parts:
        raise EvidenceFileError(f"{source.path!r} is not a path inside the folder")
    root = base.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise EvidenceFileError(f"{source.path!r} leads outside {root}")
    if not path.is_file():
        raise EvidenceFileError(f"{path} is not there any more")
    return path


def evidence_view(
    run: RunDir, ev: Evidence, file_url: str, page_url: str, language: str = "en"
) -> dict[str, Any]:
    """What the pane shows for ``ev``; ``file_url`` and ``page_url`` are the routes that
    serve its file and its rendered PDF page; ``language`` is the report's (labels)."""
    source, loc = ev.source, ev.segment.locator
    view: dict[str, Any] = {
        "id": ev.id,
        "label": ev.citation_label(language),
        "kind": source.kind,
        "source": source.path,
        "title": source.title,
        "url": source.url,
        "locator": loc.to_dict(),
        "text": ev.segment.text,
        "view": "text",
    }
    try:
        if source.kind == "pdf" and loc.page is not None:
            path = source_file(run, ev)
            view.update(view="pdf", page=loc.page, page_url=page_url)
            view["highlights"] = pdf_highlights(path, loc.page, ev.segment.text)
        elif source.kind in MEDIA_KINDS:
            source_file(run, ev)
            view.update(view="media", media=source.kind, file_url=file_url)
            view.update(start=loc.start or 0.0, end=loc.end)
        elif source.kind == "sheet" and loc.rows is not None:
            view.update(view="sheet", **sheet_rows(source_file(run, ev), loc.sheet, loc.rows))
        elif source.kind == "article" and source.article is not None:
            body = article_body(source_file(run, ev), source.article)
            view.update(view="document", **split_around(body, ev.segment.text))
        elif source.kind in TEXT_FILE_KINDS:
            body = source_file(run, ev).read_text(encoding="utf-8", errors="replace")
            view.update(view="document", **split_around(body, ev.segment.text))
        elif source.kind == "image":
            source_file(run, ev)
            view.update(view="image", file_url=file_url)
        elif source.kind in ("analysis", "figure"):
            view.update(view="computed", code=str(source.meta.get("code") or ""))
            if source.kind == "figure":
                source_file(run, ev)
                view["file_url"] = file_url
    except (EvidenceFileError, OSError, ValueError, KeyError) as exc:
        view["view"] = "text"
        view["problem"] = str(exc)
    return view


# --- PDF ----------------------------------------------------------------------------


def render_pdf_page(path: Path, page: int, scale: float = PAGE_SCALE) -> bytes:
    """PNG bytes of a 1-based page (kept in a small cache)."""
    import pypdfium2 as pdfium

    key = (str(path), scale, page)
    with _PDFIUM_LOCK:
        if key in _PAGE_CACHE:
            _PAGE_CACHE.move_to_end(key)
            return _PAGE_CACHE[key]
        doc = pdfium.PdfDocument(str(path))
        try:
            if not 1 <= page <= len(doc):
                raise ValueError(f"{path.name} has no page {page} (it has {len(doc)})")
            image = doc[page - 1].render(scale=scale).to_pil()
        finally:
            doc.close()
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        _PAGE_CACHE[key] = buf.getvalue()
        while len(_PAGE_CACHE) > PAGE_CACHE_SIZE:
            _PAGE_CACHE.popitem(last=False)
        return _PAGE_CACHE[key]


def pdf_highlights(path: Path, page: int, passage: str) -> list[list[float]]:
    """Boxes ``[x, y, width, height]`` (fractions of the page, from its top left) that
    cover ``passage`` on the 1-based page; empty when it is not found there."""
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        doc = pdfium.PdfDocument(str(path))
        try:
            if not 1 <= page <= len(doc):
                return []
            pdf_page = doc[page - 1]
            width, height = pdf_page.get_size()
            textpage = pdf_page.get_textpage()
            count = textpage.count_chars()
            text = textpage.get_text_range(0, count)
            if len(text) != count:  # characters outside the BMP: one call per character
                text = "".join(textpage.get_text_range(i, 1)[:1] or " " for i in range(count))
            boxes = []
            for first, last in passage_char_ranges(text, passage):
                for i in range(textpage.count_rects(first, last - first + 1)):
                    left, bottom, right, top = textpage.get_rect(i)
                    boxes.append(
                        [
                            round(left / width, 5),
                            round((height - top) / height, 5),
                            round((right - left) / width, 5),
                            round((top - bottom) / height, 5),
                        ]
                    )
            textpage.close()
            return boxes
        finally:
            doc.close()


def passage_char_ranges(page_text: str, passage: str) -> list[tuple[int, int]]:
    """Inclusive character ranges of ``page_text`` holding ``passage``, whitespace
    ignored: the whole passage when it is there, else each of its lines found in order."""
    kept = [i for i, ch in enumerate(page_text) if not ch.isspace()]
    compact = "".join(page_text[i] for i in kept)

    def find(needle: str, start: int) -> tuple[int, int] | None:
        at = compact.find(needle, start) if needle else -1
        return None if at < 0 else (at, at + len(needle) - 1)

    whole = find(_compact(passage), 0)
    spans = [whole] if whole else []
    if not spans:
        start = 0
        for line in passage.splitlines():
            span = find(_compact(line), start) if len(_compact(line)) >= MIN_LINE_MATCH else None
            if span:
                spans.append(span)
                start = span[1] + 1
    return [(kept[a], kept[b]) for a, b in spans]


def _compact(text: str) -> str:
    return "".join(text.split())


# --- sheets, articles, text -----------------------------------------------------------


def sheet_rows(path: Path, sheet: str | None, rows: tuple[int, int]) -> dict[str, Any]:
    """The header and the cited rows (spreadsheet numbers: header row 1, data from 2)."""
    tables = read_tables(path)
    if sheet in tables:
        df = tables[sheet]
    elif len(tables) == 1:
        df = next(iter(tables.values()))
    else:
        raise KeyError(f"{path.name} has no sheet {sheet!r}")
    first, last = max(rows[0], 2), min(rows[1], rows[0] + MAX_SHEET_ROWS - 1)
    block = df.iloc[first - 2 : last - 1]
    return {
        "sheet": sheet,
        "header": [str(c) for c in df.columns],
        "rows": [
            [first + n, *(_cell(v) for v in values)]
            for n, values in enumerate(block.itertuples(index=False))
        ],
        "total_rows": len(df) + 1,
    }


def _cell(value: Any) -> str:
    text = str(value)
    return "" if text in ("nan", "NaT", "None") else text


def article_body(path: Path, article: int) -> str:
    for index, item in iter_articles(path):
        if index == article:
            if item is None:
                raise ValueError(f"article {article} of {path.name} is over the size budget")
            title = str(item.get("title") or "")
            body = next((str(item[k]) for k in BODY_KEYS if item.get(k)), "")
            return f"{title}\n\n{body}" if title else body
    raise KeyError(f"{path.name} has no article {article}")


def split_around(body: str, passage: str) -> dict[str, Any]:
    """``before``, ``match``, ``after`` of ``body`` around ``passage`` (whitespace
    ignored); the passage alone, ``found`` false, when the body does not hold it."""
    at = body.find(passage)
    if at >= 0:
        end = at + len(passage)
    else:
        ranges = passage_char_ranges(body, passage)
        if not ranges:
            return {"before": "", "match": passage, "after": "", "found": False}
        at, end = ranges[0][0], ranges[-1][1] + 1
    return {"before": body[:at], "match": body[at:end], "after": body[end:], "found": True}
