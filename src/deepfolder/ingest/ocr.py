"""Optical character recognition (Chinese + English) with the models inside ``rapidocr``.

``rapidocr==3.10.0`` ships PP-OCRv6 detection/recognition and the PP-OCR direction
classifier as ONNX files inside the wheel (``rapidocr/models``). Left to its defaults it
*calls its downloader* for every model (which only skips the download when the file is
already there with the right sha256), so we pass the packaged files by explicit
``model_path``: then no download code runs at all, and a missing file is an error that
names the package to reinstall. The recognition model carries its character list in the
ONNX metadata, so no dictionary is fetched either.

The engine is built once per process (under a lock) and calls are serialised with the
same lock: onnxruntime already uses several threads per call, and two concurrent calls
on 2 cores only thrash.

Images are normalised to RGB before OCR; a ``numpy`` array is taken as RGB
(``H×W×3`` uint8, what PIL and PyAV's ``to_ndarray(format="rgb24")`` give), or grey.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from deepfolder.ingest.base import ExtractError

DET_MODEL = "PP-OCRv6_det_small.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
MIN_SCORE = 0.5
"""Lines recognised with a lower confidence are dropped (rapidocr's own default)."""


@dataclass(frozen=True, slots=True)
class OcrLine:
    text: str
    box: tuple[float, float, float, float]
    """``(x0, y0, x1, y1)`` in pixels of the image as given (axis-aligned hull)."""
    score: float


_engine: Any = None
_lock = threading.Lock()


def _ocr_threads() -> int:
    """onnxruntime threads per OCR call: ``$DEEPFOLDER_THREADS`` or cores (at most 4)."""
    configured = os.environ.get("DEEPFOLDER_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(4, os.cpu_count() or 1))


def _model_dir() -> Path:
    try:
        import rapidocr
    except ImportError as exc:
        raise ExtractError(
            "OCR needs the 'rapidocr' package: pip install rapidocr==3.10.0 "
            "(or set ingest.ocr to false to skip OCR)"
        ) from exc
    return Path(rapidocr.__file__).parent / "models"


def _get_engine() -> Any:
    """The process-wide RapidOCR engine, built on first use from the packaged models."""
    global _engine
    if _engine is not None:
        return _engine
    models = _model_dir()
    missing = [m for m in (DET_MODEL, CLS_MODEL, REC_MODEL) if not (models / m).is_file()]
    if missing:
        raise ExtractError(
            f"OCR model file(s) {', '.join(missing)} missing from {models}; "
            "reinstall with: pip install --force-reinstall rapidocr==3.10.0"
        )
    from rapidocr import RapidOCR

    threads = _ocr_threads()
    _engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "Global.text_score": MIN_SCORE,
            "Det.model_path": str(models / DET_MODEL),
            "Cls.model_path": str(models / CLS_MODEL),
            "Rec.model_path": str(models / REC_MODEL),
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    return _engine


def _as_rgb(image: Image.Image | Path | np.ndarray) -> Image.Image:
    if isinstance(image, (str, Path)):
        path = Path(image)
        try:
            with Image.open(path) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened) or opened
        except (OSError, ValueError) as exc:
            raise ExtractError(f"cannot open image {path} for OCR: {exc}") from exc
    elif isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = np.clip(array, 0, 255).astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 4:
            image = Image.fromarray(array, "RGBA")
        elif array.ndim == 3 and array.shape[2] == 3:
            image = Image.fromarray(array, "RGB")
        elif array.ndim == 2:
            image = Image.fromarray(array, "L")
        else:
            raise ExtractError(f"OCR expects an H×W, H×W×3 or H×W×4 array, got {array.shape}")
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent areas become white, not black: text on a transparent PNG stays legible.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def group_rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Lines grouped into rows, top-to-bottom, each row left-to-right.

    Two lines are in the same row when their vertical centres are closer than half the
    smaller line height, so slightly tilted or differently sized words on one row stay
    together instead of being interleaved by a plain sort on ``y0``.
    """
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        centre = (line.box[1] + line.box[3]) / 2
        height = line.box[3] - line.box[1]
        if rows:
            last = rows[-1][-1]
            last_centre = (last.box[1] + last.box[3]) / 2
            if abs(centre - last_centre) < 0.5 * min(height, last.box[3] - last.box[1]):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: ln.box[0]) for row in rows]


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Top-to-bottom rows, left-to-right inside a row (see :func:`group_rows`)."""
    return [line for row in group_rows(lines) for line in row]


def ocr_image(image: Image.Image | Path | np.ndarray) -> list[OcrLine]:
    """Text lines of an image in reading order; ``[]`` when there is no text.

    Raises ExtractError when the image cannot be read or the OCR package is missing.
    """
    rgb = _as_rgb(image)
    if min(rgb.size) < 8:
        return []
    with _lock:
        engine = _get_engine()
        result = engine(rgb)
    if result.boxes is None or result.txts is None or result.scores is None:
        return []
    lines = []
    for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        text = str(text).strip()
        if not text:
            continue
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) for p in quad]
        box = (min(xs), min(ys), max(xs), max(ys))
        lines.append(OcrLine(text=text, box=box, score=round(float(score), 4)))
    return reading_order(lines)


def ocr_model_info() -> dict[str, str]:
    """Models used for OCR, name -> version, for the index metadata."""
    try:
        version = importlib.metadata.version("rapidocr")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {
        "rapidocr": version,
        "ocr-det": f"{DET_MODEL} (rapidocr {version})",
        "ocr-cls": f"{CLS_MODEL} (rapidocr {version})",
        "ocr-rec": f"{REC_MODEL} (rapidocr {version})",
    }
