"""PowerPoint decks → one segment per slide: title, body text, tables, speaker notes.

Shapes are read top-to-bottom, left-to-right (their position on the slide), descending
into groups. Speaker notes follow the slide's text after a ``Notes:`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.ingest.docx import table_rows_text
from deepfolder.records import Locator, Segment, Source


def _shape_texts(shapes: Any, skip: Any = None) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    def position(shape: Any) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    texts: list[str] = []
    for shape in sorted(shapes, key=position):
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            texts.extend(_shape_texts(shape.shapes))
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            texts.append(table_rows_text(rows))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = shape.text_frame.text.strip()
            if text:
                texts.append(text)
    return texts


def extract_pptx(path: Path, ctx: ExtractContext) -> ExtractResult:
    from pptx import Presentation

    try:
        deck = Presentation(str(path))
    except Exception as exc:
        raise ExtractError(f"{path.name} is not a readable .pptx file: {exc}") from exc
    segments: list[Segment] = []
    first_title = ""
    n_slides = 0
    for number, slide in enumerate(deck.slides, start=1):
        n_slides = number
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        first_title = first_title or title
        parts = [title] if title else []
        parts.extend(_shape_texts(slide.shapes, skip=title_shape))
        if slide.has_notes_slide:
            notes_frame = slide.notes_slide.notes_text_frame
            notes = notes_frame.text.strip() if notes_frame is not None else ""
            if notes:
                parts.append("Notes: " + notes)
        text = "\n".join(parts).strip()
        if text:
            segments.append(
                Segment.create(ctx.rel_path, text, Locator(slide=number), seq=number - 1)
            )
    title = (deck.core_properties.title or "").strip() or first_title or path.stem
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="pptx",
        title=title,
        sha256=ctx.sha256,
        size=ctx.size,
        meta={"slides": n_slides},
    )
    empty = n_slides - len(segments)
    warnings = [f"{path.name}: {empty} slide(s) without text (images only?)"] if empty else []
    return ExtractResult([source], segments, warnings)
