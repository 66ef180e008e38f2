"""Video ingest quality and speed: generated narrated slide videos + the real example video.

Measures, with the real OCR (rapidocr) and ASR (whisper-base) engines:

- keyframes found vs slide changes (a change counts as found within 0.5 s), time error;
- segment time error: |segment start/end - slide start/end|;
- speech time error: |ASR segment start - narration start| per slide;
- transcript word error rate (lower-cased, punctuation removed; "12%" for "twelve
  percent" counts as errors, as a reader would see it);
- slide-text character accuracy: 1 - character error rate of each keyframe's OCR text
  against the slide's lines (whitespace ignored);
- seconds of processing per second of video (keyframes, OCR, ASR and the whole extract).

Then on ../shared/data/video/auto-editor/example.mp4 (42 s, speech at 0–17 s and 40–41 s):
keyframes, speech segments, and whether any speech is reported inside the silence.

Run: ``python benchmarks/video_ingest.py`` (needs ffmpeg, espeak-ng, fonts-noto-cjk; the
real-video part is skipped when ../shared/data is absent).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

from make_slide_video import VideoTruth, make_slide_video, missing_tools  # noqa: E402

from deepfolder.eval.text_metrics import edit_distance  # noqa: E402
from deepfolder.ingest import asr, ocr  # noqa: E402
from deepfolder.ingest.base import ExtractContext  # noqa: E402
from deepfolder.ingest.keyframes import detect_keyframes  # noqa: E402
from deepfolder.ingest.video import extract_video  # noqa: E402
from deepfolder.settings import IngestSettings  # noqa: E402

DATA = REPO / ".." / "shared" / "data" / "video" / "auto-editor"


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s%]", " ", text.lower()).split()


class Timed:
    """Wraps an engine function and sums the seconds spent in it."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def run_extract(path: Path, work: Path, **settings: Any) -> tuple[Any, dict[str, float]]:
    ctx = ExtractContext(path.name, "0" * 64, 1, IngestSettings(**settings), work / "work" / "x")
    ocr_fn, asr_fn = Timed(ocr.ocr_image), Timed(asr.transcribe)
    t0 = time.perf_counter()
    keyframes = detect_keyframes(path, max_gap_s=ctx.settings.video_window_s)
    t_keyframes = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = extract_video(path, ctx, ocr=ocr_fn, transcribe=asr_fn)
    total = time.perf_counter() - t0
    times = {
        "keyframes": t_keyframes,
        "ocr": ocr_fn.seconds,
        "ocr_calls": ocr_fn.calls,
        "asr": asr_fn.seconds,
        "total": total,
        "keyframes_found": len(keyframes),
    }
    return result, times


def slide_video_report(truth: VideoTruth, work: Path) -> list[str]:
    result, times = run_extract(Path(truth.path), work)
    meta = result.sources[0].meta
    changes = truth.changes
    found = [k["t"] for k in meta["keyframes"] if k["reason"] == "change"]
    hits = [min(found, key=lambda f: abs(f - c)) for c in changes if found]
    matched = [(c, h) for c, h in zip(changes, hits, strict=False) if abs(c - h) <= 0.5]
    false_pos = len(found) - len(matched)
    kf_err = max((abs(c - h) for c, h in matched), default=float("nan"))

    seg_err = []
    for seg, slide in zip(result.segments, truth.slides, strict=False):
        seg_err += [abs(seg.locator.start - slide.start), abs(seg.locator.end - slide.end)]
    speech_err = []
    for piece in meta["speech"]:
        nearest = min(truth.slides, key=lambda s: abs((s.speech_start or 0) - piece["start"]))
        speech_err.append(abs(piece["start"] - (nearest.speech_start or 0)))
    ref = words(" ".join(s.narration for s in truth.slides))
    hyp = words(" ".join(p["text"] for p in meta["speech"]))
    wer = edit_distance(ref, hyp) / len(ref)

    char_acc = []
    for kf, slide in zip(meta["keyframes"], truth.slides, strict=False):
        want = "".join("".join(slide.lines).split())
        got = "".join(kf["ocr"].split())
        char_acc.append(1 - edit_distance(want, got) / len(want))
    d = truth.duration
    rows = [
        f"| video | {truth.width}×{truth.height}, {truth.fps} fps, {d:.0f} s, "
        f"{len(truth.slides)} slides |",
        f"| slide changes found | {len(matched)}/{len(changes)} (false keyframes: {false_pos}); "
        f"worst time error {kf_err:.2f} s |",
        f"| segment boundary error | mean {sum(seg_err) / len(seg_err):.2f} s, "
        f"max {max(seg_err):.2f} s ({len(result.segments)} segments) |",
        f"| ASR segment start error | mean {sum(speech_err) / max(1, len(speech_err)):.2f} s, "
        f"max {max(speech_err, default=0):.2f} s ({len(meta['speech'])} speech segments) |",
        f"| transcript word error rate | {wer:.1%} ({len(ref)} reference words) |",
        f"| slide-text character accuracy | mean {sum(char_acc) / len(char_acc):.1%}, "
        f"min {min(char_acc):.1%} |",
        f"| processing (s per s of video) | total {times['total'] / d:.3f} "
        f"(keyframes {times['keyframes'] / d:.3f}, OCR {times['ocr'] / d:.3f} for "
        f"{times['ocr_calls']} frames, ASR {times['asr'] / d:.3f}) |",
    ]
    return rows


def real_video_report(work: Path) -> list[str]:
    path = DATA / "example.mp4"
    result, times = run_extract(path, work)
    meta = result.sources[0].meta
    d = meta["duration"]
    speech = meta["speech"]
    in_gap = [p for p in speech if p["start"] < 39.0 and p["end"] > 18.0]
    rows = [
        f"| video | example.mp4, {meta['width']}×{meta['height']}, {meta['fps']:g} fps, "
        f"{d:.1f} s |",
        "| keyframes | "
        + ", ".join(f"{k['t']:.1f} s ({k['reason']})" for k in meta["keyframes"])
        + " |",
        "| speech segments | "
        + "; ".join(f"{p['start']:.1f}–{p['end']:.1f} s" for p in speech)
        + " |",
        f"| speech reported inside the 17–40 s silence | {len(in_gap)} segment(s) |",
        "| segments | "
        + "; ".join(f"{s.locator.start:.1f}–{s.locator.end:.1f} s" for s in result.segments)
        + " |",
        f"| processing (s per s of video) | total {times['total'] / d:.3f} "
        f"(keyframes {times['keyframes'] / d:.3f}, OCR {times['ocr'] / d:.3f}, "
        f"ASR {times['asr'] / d:.3f}) |",
    ]
    return rows


def main() -> int:
    missing = missing_tools()
    if missing:
        print(f"skipped: missing {', '.join(missing)}")
        return 0
    # Warm both engines (model loading is a one-off cost per process, not per video).
    from PIL import Image

    ocr.ocr_image(Image.new("RGB", (64, 64), "white"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in ((640, 360), (1280, 720)):
            truth = make_slide_video(
                work / f"v{size[0]}", width=size[0], height=size[1], name="slides.mp4"
            )
            asr.transcribe(Path(truth.path))  # warm-up: loads whisper once
            print(f"\n### Generated slide video {size[0]}×{size[1]}\n")
            print("| measure | result |\n|---|---|")
            print("\n".join(slide_video_report(truth, work / f"w{size[0]}")))
        if DATA.exists():
            print("\n### Real video (auto-editor example.mp4)\n\n| measure | result |\n|---|---|")
            print("\n".join(real_video_report(work / "real")))
        else:
            print("\n(real video skipped: ../shared/data is absent)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
