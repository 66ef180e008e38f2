"""Word documents → segments per section, in body order.

Paragraphs and tables are read in the order they appear in the document body. A heading
(style ``Heading N`` or ``Title``) starts a new section; the section path
(``"2 Method > 2.1 Data"``) goes into ``Locator.section`` of every segment under it.
Tables become text rows (``cell | cell | cell``), one segment per table.
"""

from __future__ import annotations

import re
from pathlib import Path

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Locator, Segment, Source

_HEADING = re.compile(r"^(?:heading|标题)\s*(\d+)$", re.IGNORECASE)


def _heading_level(style_name: str) -> int | None:
    if style_name.lower() == "title":
        return 0
    match = _HEADING.match(style_name.strip())
    return int(match.group(1)) if match else None


def table_rows_text(rows: list[list[str]]) -> str:
    lines = []
    for cells in rows:
        deduped: list[str] = []
        for cell in cells:  # merged cells repeat their text in every grid position
            if not deduped or cell != deduped[-1]:
                deduped.append(cell)
        if any(c.strip() for c in deduped):
            lines.append(" | ".join(c.replace("\n", " ").strip() for c in deduped))
    return "\n".join(lines)


def extract_docx(path: Path, ctx: ExtractContext) -> ExtractResult:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise ExtractError(f"{path.name} is not a readable .docx file: {exc}") from exc

    segments: list[Segment] = []
    headings: list[tuple[int, str]] = []
    buffer: list[str] = []

    def section() -> str | None:
        return " > ".join(text for _, text in headings) or None

    def flush() -> None:
        text = "\n".join(buffer).strip()
        buffer.clear()
        if text:
            locator = Locator(section=section())
            segments.append(Segment.create(ctx.rel_path, text, locator, seq=len(segments)))

    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = paragraph.text.strip()
            if not text:
                continue
            level = _heading_level(paragraph.style.name if paragraph.style else "")
            if level is not None:
                flush()
                headings[:] = [h for h in headings if h[0] < level] + [(level, text)]
            buffer.append(text)
        elif tag == "tbl":
            flush()
            table = Table(element, document)
            rows = [[cell.text for cell in row.cells] for row in table.rows]
            buffer.append(table_rows_text(rows))
            flush()
    flush()
    title = (document.core_properties.title or "").strip()
    if not title and headings:
        title = headings[0][1]
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="docx",
        title=title or path.stem,
        sha256=ctx.sha256,
        size=ctx.size,
        meta={"sections": len({s.locator.section for s in segments})},
    )
    warnings = [] if segments else [f"{path.name}: the document has no text"]
    return ExtractResult([source], segments, warnings)
