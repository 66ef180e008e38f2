"""PDF pages → one segment per page, in reading order, with the page number.

Text comes from pdfium's text layer (pypdfium2). Two-column pages are read column by
column: pdfium's text rectangles (one per run of text on a line) are projected onto the
x axis and a vertical empty band near the middle of the page, with text on both sides
over a good part of the page height, marks the gutter. The page is then read as: text
spanning the gutter above the columns (title, authors), the left column, the right
column, spanning text below (footnotes, full-width figures). Captions are ordinary text
and stay where they are.

A page without a text layer is rendered and OCR'd with ``deepfolder.ingest.ocr`` when
that module and its models are installed; otherwise the page is reported in the
warnings as not OCR'd.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Locator, Segment, Source

_CJK = "\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_JOIN_CJK_LINES = re.compile(rf"[{_CJK}]\n[{_CJK}]")
_WRAPPED_TOKEN = re.compile(rf"[0-9A-Za-z{_CJK}]\n[0-9{_CJK}]|[0-9]\n[%.,]")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_MIN_TEXT_CHARS = 8


def clean_page_text(text: str) -> str:
    """Normalise pdfium's line breaks; join lines broken inside Chinese sentences and
    English words hyphenated across lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "")
    text = text.replace("\ufffe", "").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _HYPHEN_BREAK.sub("", text)
    text = _join_wrapped_cjk_lines(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _mostly_cjk(line: str) -> bool:
    cjk = len(re.findall(rf"[{_CJK}]", line))
    return cjk >= 0.5 * len(line.replace(" ", ""))


def _join_wrapped_cjk_lines(text: str) -> str:
    """Join a line to the next when both meet in CJK characters and the line is about as
    long as the page's full lines (so it was wrapped, not a heading or a short last line)."""
    lines = text.split("\n")
    cjk_end = re.compile(rf"[{_CJK}]$")
    lengths = sorted(len(line) for line in lines if len(line) >= 10 and cjk_end.search(line))
    if not lengths:
        return text
    full = lengths[int(len(lengths) * 0.75)]
    out = [lines[0]]
    for prev, line in itertools.pairwise(lines):
        if (
            prev
            and line
            and len(prev) >= 0.85 * full
            and (
                _JOIN_CJK_LINES.match(prev[-1] + "\n" + line[0])
                # a number or an English word wrapped inside a Chinese line ("202\n3年")
                or (_WRAPPED_TOKEN.match(prev[-1] + "\n" + line[0]) and _mostly_cjk(prev))
            )
        ):
            out[-1] += line
        else:
            out.append(line)
    return "\n".join(out)


def _text_rects(textpage: Any) -> list[tuple[float, float, float, float]]:
    rects = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        if right - left > 0.5 and top - bottom > 0.5:
            rects.append((left, bottom, right, top))
    return rects


def find_column_gap(rects: list[tuple[float, float, float, float]], width: float) -> float | None:
    """x of the gutter of a two-column layout, or None for a single-column page."""
    if len(rects) < 6 or width <= 0:
        return None
    lo, hi = width * 0.3, width * 0.7
    allowed = max(2, len(rects) // 10)
    step = 2.0
    best: tuple[float, float] | None = None  # (band width, centre)
    x = lo
    run_start: float | None = None
    while x <= hi:
        # A title or a full-width figure may cross the gutter; a few crossers are allowed.
        crossing = sum(left < x < right for left, _, right, _ in rects) > allowed
        if not crossing and run_start is None:
            run_start = x
        if (crossing or x + step > hi) and run_start is not None:
            end = x
            if best is None or end - run_start > best[0]:
                best = (end - run_start, (run_start + end) / 2)
            run_start = None
        x += step
    if best is None or best[0] < 4:
        return None
    gap = best[1]
    left_rects = [r for r in rects if r[2] <= gap]
    right_rects = [r for r in rects if r[0] >= gap]
    if len(left_rects) < 3 or len(right_rects) < 3:
        return None

    def height(rs: list[tuple[float, float, float, float]]) -> float:
        return max(r[3] for r in rs) - min(r[1] for r in rs)

    page_h = max(r[3] for r in rects) - min(r[1] for r in rects)
    if min(height(left_rects), height(right_rects)) < 0.25 * page_h:
        return None
    # Text crossing the gutter is allowed only above or below the columns (a title, a
    # footer); a crossing line between column lines means a single-column page.
    band_top = max(r[3] for r in left_rects + right_rects)
    band_bottom = min(r[1] for r in left_rects + right_rects)
    for left, bottom, right, top in rects:
        if left < gap < right and bottom < band_top - 1 and top > band_bottom + 1:
            return None
    return gap


def _page_text(page: Any) -> str:
    """The page's text in reading order, limited to the visible page box: some PDFs
    (spreads exported page by page) carry the neighbouring pages' text outside it."""
    textpage = page.get_textpage()
    try:
        x0, y0, x1, y1 = page.get_cropbox()
        rects = [
            (max(left, x0), max(bottom, y0), min(right, x1), min(top, y1))
            for left, bottom, right, top in _text_rects(textpage)
            if right > x0 and left < x1 and top > y0 and bottom < y1
        ]
        shifted = [(a - x0, b, c - x0, d) for a, b, c, d in rects]
        gap = find_column_gap(shifted, x1 - x0)
        if gap is None:
            return textpage.get_text_bounded(x0, y0, x1, y1)
        gap += x0
        cols = [r for r in rects if r[2] <= gap or r[0] >= gap]
        col_top = max(r[3] for r in cols)
        col_bottom = min(r[1] for r in cols)
        parts = [
            textpage.get_text_bounded(x0, col_top, x1, y1),  # spanning text above
            textpage.get_text_bounded(x0, col_bottom, gap, col_top),
            textpage.get_text_bounded(gap, col_bottom, x1, col_top),
            textpage.get_text_bounded(x0, y0, x1, col_bottom),  # spanning text below
        ]
        return "\n".join(p for p in parts if p.strip())
    finally:
        textpage.close()


def _ocr_page(page: Any, number: int, ctx: ExtractContext) -> tuple[str, str]:
    """(text, warning) for a page without a text layer."""
    if not ctx.settings.ocr:
        return "", f"page {number} has no text layer and OCR is off (ingest.ocr = false)"
    try:
        from deepfolder.ingest.ocr import ocr_image
    except ImportError as exc:
        return "", (
            f"page {number} has no text layer and was not OCR'd: the OCR module is not "
            f"available ({exc}); install deepfolder's 'media' extra"
        )
    image = page.render(scale=2.0).to_pil()
    try:
        lines = ocr_image(image)
    except Exception as exc:  # OCR models failing must not lose the rest of the PDF
        return "", f"page {number}: OCR failed ({type(exc).__name__}: {exc})"
    ctx.models.setdefault("ocr", "deepfolder.ingest.ocr")
    return "\n".join(line.text for line in lines if line.text.strip()), ""


def _open(path: Path) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message or "security" in message:
            raise ExtractError(
                f"{path.name} is encrypted (password protected): save an unprotected copy "
                "to index it"
            ) from exc
        raise ExtractError(
            f"{path.name} is not a readable PDF (corrupt or truncated): {exc}"
        ) from exc


def extract_pdf(path: Path, ctx: ExtractContext) -> ExtractResult:
    doc = _open(path)
    warnings: list[str] = []
    segments: list[Segment] = []
    try:
        n_pages = len(doc)
        title = (doc.get_metadata_value("Title") or "").strip()
        ocr_pages = 0
        for index in range(n_pages):
            page = doc[index]
            try:
                text = clean_page_text(_page_text(page))
                if len(text) < _MIN_TEXT_CHARS:
                    ocr_text, warning = _ocr_page(page, index + 1, ctx)
                    if warning:
                        warnings.append(warning)
                    if ocr_text.strip():
                        text, ocr_pages = clean_page_text(ocr_text), ocr_pages + 1
                    elif not warning:
                        warnings.append(f"page {index + 1}: no text layer and OCR found no text")
            finally:
                page.close()
            if text:
                segments.append(
                    Segment.create(ctx.rel_path, text, Locator(page=index + 1), seq=index)
                )
    finally:
        doc.close()
    meta = {"pages": n_pages, "ocr_pages": ocr_pages}
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="pdf",
        title=title or path.stem,
        sha256=ctx.sha256,
        size=ctx.size,
        meta=meta,
    )
    if not segments:
        warnings.append(f"{path.name}: no text on any of its {n_pages} pages")
    return ExtractResult([source], segments, warnings)
