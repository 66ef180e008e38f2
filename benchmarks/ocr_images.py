"""OCR quality and speed on rendered Chinese/English slides with known text.

Each slide is drawn with Pillow and the Noto CJK fonts (Debian ``fonts-noto-cjk``): a
title and bullet lines, in several variants a reader meets — a plain 1280×720 slide, a
dark theme, a serif font, small 18-px text, a low-contrast grey-on-white slide, a
2°-rotated photo-like slide, and a 640×360 JPEG at quality 40 (a video keyframe).

Measured per slide: character accuracy = 1 - character error rate of the OCR text (lines
in reading order, whitespace ignored) against the drawn lines; the share of drawn lines
found exactly (whitespace ignored); "content accuracy", the same over letters, digits and
CJK only (a bullet "•" read as "·" or a full-width "，" read as "," is not counted);
seconds per image (after one warm-up image, so model loading is not counted).

Run: ``python benchmarks/ocr_images.py`` (needs fonts-noto-cjk).
"""

from __future__ import annotations

import io
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from deepfolder.eval.text_metrics import edit_distance
from deepfolder.ingest.ocr import ocr_image

FONTS = Path("/usr/share/fonts/opentype/noto")
SANS = FONTS / "NotoSansCJK-Regular.ttc"
SERIF = FONTS / "NotoSerifCJK-Regular.ttc"

SLIDES: list[list[str]] = [
    [
        "避风港原则的适用范围",
        "• 网络服务提供者在收到通知后及时删除",
        "• Notice-and-takedown since DMCA 1998",
        "• 平台知道或应当知道侵权时承担连带责任",
    ],
    [
        "COVID-19 Monitoring Report",
        "Confirmed cases rose 12.5% week over week",
        "死亡病例：较上周下降 3.2%",
        "Data source: JHU CSSE time series",
    ],
    [
        "学生压力因素分析",
        "睡眠质量 Sleep quality 与学业压力相关",
        "Headaches, study load, extracurriculars",
        "样本量 n = 53，7 个变量",
    ],
]


@dataclass
class Variant:
    name: str
    font: Path = SANS
    size: int = 40
    background: str = "white"
    ink: str = "black"
    rotate: float = 0.0
    downscale_jpeg: bool = False


VARIANTS = [
    Variant("plain"),
    Variant("dark theme", background="#1e2a44", ink="#f0f0f0"),
    Variant("serif", font=SERIF),
    Variant("small 18px", size=18),
    Variant("low contrast", ink="#9a9a9a"),
    Variant("rotated 2°", rotate=2.0),
    Variant("640x360 JPEG q40", downscale_jpeg=True),
]


def render(lines: list[str], variant: Variant) -> Image.Image:
    font = ImageFont.truetype(str(variant.font), variant.size)
    title_font = ImageFont.truetype(str(variant.font), int(variant.size * 1.3))
    image = Image.new("RGB", (1280, 720), variant.background)
    draw = ImageDraw.Draw(image)
    y = 60
    for n, line in enumerate(lines):
        draw.text((70, y), line, font=title_font if n == 0 else font, fill=variant.ink)
        y += int(variant.size * (2.4 if n == 0 else 1.8))
    if variant.rotate:
        image = image.rotate(variant.rotate, expand=True, fillcolor=variant.background)
    if variant.downscale_jpeg:
        image = image.resize((640, 360))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=40)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def content(text: str) -> str:
    """Letters, digits and CJK only: bullets and half/full-width punctuation ignored."""
    return "".join(re.findall(r"[^\W_]", text))


def main() -> int:
    if not SANS.exists():
        print(f"skipped: {SANS} is absent (install fonts-noto-cjk)")
        return 0
    ocr_image(render(SLIDES[0], VARIANTS[0]))  # warm-up: load the models
    print("| variant | char accuracy | content accuracy | lines exact | s/image |")
    print("|---|---|---|---|---|")
    totals = []
    failures: list[str] = []
    for variant in VARIANTS:
        errors = chars = exact = lines_total = content_errors = content_chars = 0
        seconds = 0.0
        for lines in SLIDES:
            image = render(lines, variant)
            t0 = time.perf_counter()
            found = ocr_image(image)
            seconds += time.perf_counter() - t0
            got = [squash(ln.text) for ln in found]
            want = [squash(line) for line in lines]
            errors += edit_distance("".join(want), "".join(got))
            chars += len("".join(want))
            content_errors += edit_distance(content("".join(lines)), content("".join(got)))
            content_chars += len(content("".join(lines)))
            exact += sum(1 for line in want if line in got)
            lines_total += len(want)
            for w in want:
                if w not in got:
                    near = min(got, key=lambda g: edit_distance(w, g), default="")
                    failures.append(f"{variant.name}: {w!r} read as {near!r}")
        accuracy = 1 - errors / chars
        content_accuracy = 1 - content_errors / content_chars
        per_image = seconds / len(SLIDES)
        totals.append((accuracy, per_image))
        print(
            f"| {variant.name} | {accuracy:.3f} | {content_accuracy:.3f} | "
            f"{exact}/{lines_total} | {per_image:.2f} |"
        )
    mean_acc = sum(a for a, _ in totals) / len(totals)
    mean_s = sum(s for _, s in totals) / len(totals)
    print(f"\nmean char accuracy {mean_acc:.3f}, mean {mean_s:.2f} s/image")
    if failures:
        print("lines not read exactly:")
        for line in failures:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
