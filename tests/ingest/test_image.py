"""The image extractor on images the test makes: metadata segment, OCR blocks, EXIF."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from deepfolder.ingest.base import ExtractContext, ExtractError
from deepfolder.ingest.image import colour_name, dominant_colours, extract_image, group_blocks
from deepfolder.ingest.ocr import OcrLine
from deepfolder.settings import IngestSettings

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
needs_font = pytest.mark.skipif(not FONT.exists(), reason="fonts-noto-cjk is not installed")


def context(path: Path, tmp_path: Path, **settings: object) -> ExtractContext:
    data = path.read_bytes()
    return ExtractContext(
        rel_path=f"pics/{path.name}",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        settings=IngestSettings(**settings),
        work_dir=tmp_path / "work",
    )


def make_slide(path: Path) -> Path:
    """A blue-titled slide: a heading block, a gap, then a two-line body block."""
    font = ImageFont.truetype(str(FONT), 40)
    image = Image.new("RGB", (1000, 600), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1000, 110), fill=(20, 60, 170))
    draw.text((40, 30), "平台责任 Platform duty", font=font, fill="white")
    draw.text((40, 300), "通知删除规则", font=font, fill="black")
    draw.text((40, 360), "Notice and takedown", font=font, fill="black")
    image.save(path)
    return path


@needs_font
def test_slide_image_gives_metadata_and_text_blocks(tmp_path: Path) -> None:
    path = make_slide(tmp_path / "slide.png")
    ctx = context(path, tmp_path)
    result = extract_image(path, ctx)

    (source,) = result.sources
    assert source.id == "pics/slide.png" and source.kind == "image"
    assert source.meta["width"] == 1000 and source.meta["height"] == 600
    assert source.meta["format"] == "PNG"
    names = [c["name"] for c in source.meta["colours"]]
    assert names[0] == "white" and "blue" in names

    meta_seg, *text_segs = result.segments
    assert meta_seg.locator.section == "image metadata" and meta_seg.seq == 0
    assert "slide.png" in meta_seg.text and "1000×600" in meta_seg.text
    assert [s.text for s in text_segs] == [
        "平台责任 Platform duty",
        "通知删除规则\nNotice and takedown",
    ]
    whole = "\n\n".join(s.text for s in text_segs)
    for seg in text_segs:  # char spans point into the whole OCR text
        assert whole[seg.locator.char_start : seg.locator.char_end] == seg.text
    assert [s.locator.chunk for s in text_segs] == [1, 2]
    assert len(source.meta["ocr_blocks"]) == 2 and len(source.meta["ocr_lines"]) == 3
    assert "rapidocr" in ctx.models


def test_image_without_text_is_findable_by_name(tmp_path: Path) -> None:
    path = tmp_path / "sunset.jpg"
    Image.new("RGB", (320, 200), (230, 120, 20)).save(path)
    result = extract_image(path, context(path, tmp_path))
    assert len(result.segments) == 1
    text = result.segments[0].text
    assert "sunset.jpg" in text and "JPEG" in text and "no text found by OCR" in text
    assert "orange" in text


def test_exif_date_and_camera(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    image = Image.new("RGB", (64, 48), "green")
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS 5D"  # Model
    exif.get_ifd(0x8769)[0x9003] = "2023:05:01 10:20:30"  # DateTimeOriginal
    image.save(path, exif=exif)
    result = extract_image(path, context(path, tmp_path, ocr=False))
    meta = result.sources[0].meta
    assert meta["date_taken"] == "2023:05:01 10:20:30" and meta["camera"] == "Canon EOS 5D"
    assert "taken 2023:05:01" in result.segments[0].text
    assert "OCR disabled" in result.segments[0].text and result.warnings


def test_broken_image_is_an_extract_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(ExtractError, match=r"broken\.png"):
        extract_image(path, context(path, tmp_path))


def test_group_blocks_splits_on_gaps_and_size() -> None:
    lines = [
        OcrLine("a", (0, 0, 50, 20), 1.0),
        OcrLine("b", (60, 2, 90, 20), 1.0),  # same row as "a"
        OcrLine("c", (0, 25, 50, 45), 1.0),  # close below: same block
        OcrLine("d", (0, 120, 50, 140), 1.0),  # far below: new block
    ]
    assert [b.text for b in group_blocks(lines)] == ["a b\nc", "d"]
    assert [b.text for b in group_blocks(lines, max_chars=4)] == ["a b", "c", "d"]


def test_colour_names() -> None:
    assert colour_name((255, 255, 255)) == "white"
    assert colour_name((0, 0, 0)) == "black"
    assert colour_name((128, 128, 128)) == "grey"
    assert colour_name((200, 30, 30)) == "red"
    assert colour_name((30, 60, 200)) == "blue"
    shares = [c["share"] for c in dominant_colours(Image.new("RGB", (10, 10), "red"))]
    assert shares == [1.0]
