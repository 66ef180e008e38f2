"""OCR on images the test renders with the Noto CJK font (Chinese + English)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from deepfolder.ingest.base import ExtractError
from deepfolder.ingest.ocr import OcrLine, ocr_image, ocr_model_info, reading_order

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
needs_font = pytest.mark.skipif(not FONT.exists(), reason="fonts-noto-cjk is not installed")


def render(
    lines: list[tuple[tuple[int, int], str]], size: tuple[int, int] = (900, 320)
) -> Image.Image:
    font = ImageFont.truetype(str(FONT), 36)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for (x, y), text in lines:
        draw.text((x, y), text, font=font, fill="black")
    return image


@needs_font
def test_chinese_and_english_lines_in_reading_order(tmp_path: Path) -> None:
    image = render(
        [
            ((40, 200), "左边"),
            ((500, 205), "右边 right"),
            ((40, 40), "避风港原则与平台责任"),
            ((40, 120), "Safe harbor principle, 2024"),
        ]
    )
    lines = ocr_image(image)
    assert [ln.text for ln in lines] == [
        "避风港原则与平台责任",
        "Safe harbor principle, 2024",
        "左边",
        "右边 right",
    ]
    first = lines[0]
    assert 20 <= first.box[0] <= 50 and 30 <= first.box[1] <= 60  # where it was drawn
    assert first.box[2] > first.box[0] and first.box[3] > first.box[1]
    assert all(0.5 <= ln.score <= 1.0 for ln in lines)

    # The title alone, from a file path and as an RGB numpy array, reads the same.
    title = image.crop((0, 20, 900, 110))
    path = tmp_path / "title.png"
    title.save(path)
    assert [ln.text for ln in ocr_image(path)] == ["避风港原则与平台责任"]
    assert [ln.text for ln in ocr_image(np.asarray(title))] == ["避风港原则与平台责任"]


@needs_font
def test_transparent_png_reads_as_white_background() -> None:
    font = ImageFont.truetype(str(FONT), 40)
    image = Image.new("RGBA", (600, 160), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((40, 50), "透明背景测试", font=font, fill=(0, 0, 0, 255))
    assert [ln.text for ln in ocr_image(image)] == ["透明背景测试"]


def test_blank_and_tiny_images_have_no_text() -> None:
    assert ocr_image(Image.new("RGB", (400, 200), "white")) == []
    assert ocr_image(Image.new("RGB", (4, 4), "white")) == []


def test_unreadable_file_is_an_extract_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ExtractError, match=r"broken\.png"):
        ocr_image(bad)


def test_reading_order_keeps_a_row_together_despite_uneven_tops() -> None:
    big = OcrLine("Title", (10, 10, 200, 60), 0.9)
    right = OcrLine("right", (300, 18, 380, 52), 0.9)  # same row, lower top
    below = OcrLine("below", (10, 80, 120, 110), 0.9)
    assert [ln.text for ln in reading_order([below, right, big])] == ["Title", "right", "below"]


def test_model_info_names_packaged_models() -> None:
    info = ocr_model_info()
    assert info["rapidocr"] == "3.10.0"
    assert "PP-OCRv6_rec_small.onnx" in info["ocr-rec"]


def test_no_download_is_attempted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is built from the packaged files: rapidocr's downloader never runs."""
    import rapidocr.utils.download_file as download_file

    import deepfolder.ingest.ocr as ocr

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("rapidocr tried to download a model")

    monkeypatch.setattr(download_file.DownloadFile, "run", classmethod(forbidden))
    monkeypatch.setattr(ocr, "_engine", None)  # force a fresh engine build
    assert ocr_image(Image.new("RGB", (200, 100), "white")) == []
