"""Images: a metadata segment (so every image is findable by name) and its OCR text.

Segments of one image, in order:

1. ``seq 0`` — metadata: file name, size, format, EXIF date/camera, dominant colours and
   whether text was found; ``Locator(section="image metadata")``.
2. ``seq 1…`` — OCR text blocks: lines in reading order, grouped into blocks where the
   vertical gap between rows is small; ``Locator(chunk=n, char_start, char_end)`` where
   the span is into the whole OCR text (blocks joined by blank lines). The pixel boxes of
   every line and block are kept in ``Source.meta["ocr_blocks"]``.

A caption from a vision model is *not* made here: ingest has no model (ExtractContext
carries none, and indexing must stay offline and reproducible). Visual questions are
answered at run time by the ``inspect_image`` tool when a vision model is configured.
"""

from __future__ import annotations

import colorsys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.ingest.ocr import OcrLine, group_rows, ocr_image, ocr_model_info
from deepfolder.records import Locator, Segment, Source

MAX_PIXELS = 200_000_000
"""Larger images are refused rather than decoded (a decompression-bomb guard)."""
MAX_LINES_IN_META = 300
BLOCK_GAP = 1.2
"""A new text block starts when the gap above a row exceeds this many line heights."""


@dataclass(slots=True)
class TextBlock:
    rows: list[list[OcrLine]]
    """Rows of OCR lines; the lines of one row are joined by a space."""

    @property
    def text(self) -> str:
        return "\n".join(" ".join(line.text for line in row) for row in self.rows)

    @property
    def box(self) -> tuple[float, float, float, float]:
        lines = [line for row in self.rows for line in row]
        return (
            min(ln.box[0] for ln in lines),
            min(ln.box[1] for ln in lines),
            max(ln.box[2] for ln in lines),
            max(ln.box[3] for ln in lines),
        )


def _row_box(row: list[OcrLine]) -> tuple[float, float]:
    return min(ln.box[1] for ln in row), max(ln.box[3] for ln in row)


def group_blocks(lines: list[OcrLine], max_chars: int = 400) -> list[TextBlock]:
    """Group OCR lines into rows, and rows into blocks separated by vertical gaps.

    A new block starts when the gap above a row exceeds ``BLOCK_GAP`` line heights, or
    when the block would exceed ``max_chars`` (one dense poster must not become a single
    oversized segment).
    """
    blocks: list[TextBlock] = []
    size = 0
    for row in group_rows(lines):
        row_chars = sum(len(ln.text) + 1 for ln in row)
        if blocks:
            prev_top, prev_bottom = _row_box(blocks[-1].rows[-1])
            top, bottom = _row_box(row)
            height = max(1.0, min(prev_bottom - prev_top, bottom - top))
            if top - prev_bottom <= BLOCK_GAP * height and size + row_chars <= max_chars:
                blocks[-1].rows.append(row)
                size += row_chars
                continue
        blocks.append(TextBlock([row]))
        size = row_chars
    return blocks


# --- metadata -----------------------------------------------------------------------

_COLOUR_NAMES = (
    (15, "red"),
    (40, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "cyan"),
    (260, "blue"),
    (300, "purple"),
    (340, "pink"),
    (360, "red"),
)


def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain colour word for an RGB triple (hue buckets; greys by lightness)."""
    r, g, b = (c / 255 for c in rgb)
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    if light > 0.92:
        return "white"
    if light < 0.1:
        return "black"
    if sat < 0.18 or (light < 0.2 and sat < 0.4):
        return "grey"
    degrees = hue * 360
    name = next(n for limit, n in _COLOUR_NAMES if degrees < limit)
    if name == "orange" and light < 0.4:
        return "brown"
    return name


def dominant_colours(image: Image.Image, count: int = 4) -> list[dict[str, Any]]:
    """The ``count`` most common colours (median-cut on a thumbnail) with their share."""
    thumb = image.convert("RGB")
    thumb.thumbnail((96, 96))
    quantized = thumb.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    total = thumb.width * thumb.height
    found = []
    counts: list[tuple[int, int]] = quantized.getcolors() or []  # type: ignore[assignment]
    for pixels, index in sorted(counts, reverse=True):
        rgb = (palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])
        found.append(
            {
                "hex": "#{:02x}{:02x}{:02x}".format(*rgb),
                "name": colour_name(rgb),
                "share": round(pixels / total, 3),
            }
        )
    return found


def exif_fields(image: Image.Image) -> dict[str, str]:
    """Date taken and camera from EXIF, when present (no GPS: not needed, and private)."""
    try:
        exif = image.getexif()
    except Exception:  # corrupt EXIF must not fail the image
        return {}
    out: dict[str, str] = {}
    detail = exif.get_ifd(ExifTags.IFD.Exif) if exif else {}
    date = detail.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    if date:
        out["date_taken"] = str(date).strip("\x00 ")
    camera = " ".join(
        str(exif.get(tag, "")).strip("\x00 ") for tag in (ExifTags.Base.Make, ExifTags.Base.Model)
    ).strip()
    if camera:
        out["camera"] = camera
    return out


def _open_image(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            if image.width * image.height > MAX_PIXELS:
                raise ExtractError(
                    f"image {path.name} is {image.width}×{image.height} pixels, over the "
                    f"{MAX_PIXELS:,}-pixel limit; shrink it to index it"
                )
            image.load()
    except UnidentifiedImageError as exc:
        raise ExtractError(
            f"{path.name} is not an image format Pillow can read (HEIC/AVIF/SVG need "
            "converting to PNG or JPEG first)"
        ) from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ExtractError(f"cannot read image {path.name}: {exc}") from exc
    return image


def describe_metadata(name: str, meta: dict[str, Any], ocr_state: str) -> str:
    """The text of the metadata segment: what is known about the image without a model."""
    parts = [f"Image {name}: {meta['width']}×{meta['height']} pixels, {meta['format']}"]
    if meta.get("frames", 1) > 1:
        parts.append(f"{meta['frames']} frames (animated)")
    if meta.get("date_taken"):
        parts.append(f"taken {meta['date_taken']}")
    if meta.get("camera"):
        parts.append(f"camera {meta['camera']}")
    colours = ", ".join(f"{c['name']} {c['hex']} {c['share']:.0%}" for c in meta["colours"])
    parts.append(f"dominant colours: {colours}")
    parts.append(ocr_state)
    return "; ".join(parts) + "."


# --- the extractor -------------------------------------------------------------------


def extract_image(path: Path, ctx: ExtractContext) -> ExtractResult:
    """One image source: a metadata segment plus its OCR text blocks."""
    image = _open_image(path)
    with image:
        meta: dict[str, Any] = {
            "width": image.width,
            "height": image.height,
            "format": image.format or path.suffix.lstrip(".").upper(),
            "mode": image.mode,
            "frames": int(getattr(image, "n_frames", 1) or 1),
        }
        meta.update(exif_fields(image))
        upright = ImageOps.exif_transpose(image) or image
        meta["colours"] = dominant_colours(upright)
        warnings_out: list[str] = []
        lines: list[OcrLine] = []
        if ctx.settings.ocr:
            lines = ocr_image(upright)
            ctx.models.update(ocr_model_info())
            ocr_state = (
                f"text found by OCR: {len(lines)} line(s)" if lines else "no text found by OCR"
            )
        else:
            ocr_state = "OCR disabled (ingest.ocr = false): text in the image is not indexed"
            warnings_out.append(f"{ctx.rel_path}: OCR disabled, only metadata indexed")

    name = path.name
    segments = [
        Segment.create(
            ctx.rel_path,
            describe_metadata(name, meta, ocr_state),
            Locator(section="image metadata"),
            seq=0,
        )
    ]
    blocks = group_blocks(lines, max_chars=ctx.settings.chunk_chars)
    offset = 0
    block_meta = []
    for n, block in enumerate(blocks, 1):
        text = block.text
        locator = Locator(chunk=n, char_start=offset, char_end=offset + len(text))
        segments.append(Segment.create(ctx.rel_path, text, locator, seq=n))
        block_meta.append({"chunk": n, "box": [round(v, 1) for v in block.box]})
        offset += len(text) + 2  # blocks are joined by a blank line
    meta["ocr_blocks"] = block_meta
    meta["ocr_lines"] = [
        {"text": ln.text, "box": [round(v, 1) for v in ln.box], "score": ln.score}
        for ln in lines[:MAX_LINES_IN_META]
    ]
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="image",
        title=name,
        sha256=ctx.sha256,
        size=ctx.size,
        meta=meta,
    )
    return ExtractResult(sources=[source], segments=segments, warnings=warnings_out)
