"""Video files: keyframes at slide/scene changes, their OCR, the timed transcript and
embedded subtitles, aligned into time-window segments.

What one video becomes:

- a :class:`~deepfolder.records.Source` of kind ``video`` whose ``meta`` holds the
  timeline the tools work from: ``duration``, ``width``, ``height``, ``fps``,
  ``keyframes`` (``[{t, path, ocr, reason}]``, ``path`` relative to the index directory),
  ``speech`` (``[{start, end, text}]``), ``subtitles`` (``[{start, end, text, language}]``),
  ``language`` and ``asr`` (what happened to the audio: ``ok``, ``disabled``,
  ``no audio track``, ``failed: …``);
- segments, one per time window, each with ``Locator(start, end, keyframe=…)`` and text
  lines ``screen: …`` (OCR of the keyframes showing in the window), ``speech: …`` and
  ``subtitle: …``.

Windows (:func:`plan_windows`) are cut at every slide/scene change, at the edges of long
silences, and, for stretches longer than 1.5 × ``video_window_s``, into near-equal parts
whose cuts are moved to the nearest pause between speech segments. A speech segment or
subtitle cue belongs to the window holding its midpoint, so no sentence is counted twice.

OCR and ASR are the shared engines of :mod:`deepfolder.ingest.ocr` and
:mod:`deepfolder.ingest.asr`; both can be injected (tests pass fakes). A video whose
audio cannot be transcribed (ASR off, no audio track, ASR package missing) still yields
its on-screen text, with a warning saying why there is no speech.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.ingest.keyframes import (
    Keyframe,
    VideoInfo,
    detect_keyframes,
    probe_video,
)
from deepfolder.records import Locator, Segment, Source


class _HasText(Protocol):
    @property
    def text(self) -> str: ...


class _TimedText(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def text(self) -> str: ...


OcrFn = Callable[[Image.Image], Sequence[_HasText]]
TranscribeFn = Callable[..., tuple[Sequence[_TimedText], str]]

LONG_SILENCE_S = 8.0
"""A pause in speech at least this long becomes a window boundary."""
MIN_WINDOW_S = 1.0
"""Windows shorter than this are merged into a neighbour."""


@dataclass(frozen=True, slots=True)
class TimedText:
    start: float
    end: float
    text: str
    language: str = ""

    @property
    def mid(self) -> float:
        return (self.start + self.end) / 2

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.language:
            data["language"] = self.language
        return data


@dataclass(slots=True)
class SavedKeyframe:
    t: float
    path: str
    """Relative to the index directory (``work/<sha16>/keyframes/…``)."""
    ocr: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "path": self.path, "ocr": self.ocr, "reason": self.reason}


@dataclass(slots=True)
class Window:
    start: float
    end: float
    keyframes: list[SavedKeyframe] = field(default_factory=list)
    speech: list[TimedText] = field(default_factory=list)
    subtitles: list[TimedText] = field(default_factory=list)

    def text(self) -> str:
        lines = []
        screen = [" / ".join(k.ocr.splitlines()) for k in self.keyframes if k.ocr]
        if screen:
            lines.append("screen: " + " / ".join(dict.fromkeys(screen)))
        if self.speech:
            lines.append("speech: " + " ".join(s.text for s in self.speech))
        if self.subtitles:
            lines.append("subtitle: " + " ".join(s.text for s in self.subtitles))
        return "\n".join(lines)


# --- windows ---------------------------------------------------------------------------


def plan_windows(
    duration: float,
    scene_starts: Sequence[float],
    speech: Sequence[TimedText],
    window_s: float,
) -> list[tuple[float, float]]:
    """Time windows covering ``[0, duration]``; see the module docstring for the rules."""
    if duration <= 0:
        return []
    cuts = {0.0, duration}
    cuts.update(t for t in scene_starts if 0 < t < duration)
    pieces = sorted(speech, key=lambda s: s.start)
    edges = [0.0, *[x for s in pieces for x in (s.start, s.end)], duration]
    for gap_start, gap_end in zip(edges[0::2], edges[1::2], strict=False):
        if gap_end - gap_start >= LONG_SILENCE_S:
            cuts.update(t for t in (gap_start, gap_end) if 0 < t < duration)
    bounds = sorted(cuts)
    # Merge slivers (a change detected just after a silence edge, say) into the neighbour.
    merged = [bounds[0]]
    for t in bounds[1:-1]:
        if t - merged[-1] >= MIN_WINDOW_S and duration - t >= MIN_WINDOW_S:
            merged.append(t)
    merged.append(duration)
    pauses = [(a.end + b.start) / 2 for a, b in itertools.pairwise(pieces)]
    windows: list[tuple[float, float]] = []
    for start, end in itertools.pairwise(merged):
        length = end - start
        if length <= 1.5 * window_s:
            windows.append((start, end))
            continue
        parts = math.ceil(length / window_s)
        inner = []
        for i in range(1, parts):
            target = start + i * length / parts
            near = [p for p in pauses if abs(p - target) <= window_s * 0.25 and start < p < end]
            inner.append(min(near, key=lambda p: abs(p - target)) if near else target)
        points = [start, *sorted(set(inner)), end]
        windows.extend(itertools.pairwise(points))
    return [(round(a, 3), round(b, 3)) for a, b in windows if b > a]


def assign_to_windows(
    windows: list[tuple[float, float]],
    keyframes: Sequence[SavedKeyframe],
    speech: Sequence[TimedText],
    subtitles: Sequence[TimedText],
) -> list[Window]:
    """Fill each window: keyframes shown in it (including the one already on screen at
    its start), and the speech/subtitles whose midpoint falls in it."""
    out = [Window(a, b) for a, b in windows]
    for w, (a, b) in zip(out, windows, strict=True):
        last = len(out) - 1
        inside = [k for k in keyframes if a <= k.t < b or (w is out[last] and k.t == b)]
        showing = [k for k in keyframes if k.t < a]
        if showing and not any(k.t == a for k in inside):
            inside.insert(0, showing[-1])  # the picture still on screen at the start
        w.keyframes = inside

    def window_of(t: float) -> Window | None:
        for w in out:
            if w.start <= t < w.end:
                return w
        return out[-1] if out and t >= out[-1].end else None

    for item in speech:
        if (target := window_of(item.mid)) is not None:
            target.speech.append(item)
    for item in subtitles:
        if (target := window_of(item.mid)) is not None:
            target.subtitles.append(item)
    return out


# --- the pieces ------------------------------------------------------------------------


def read_subtitles(path: Path) -> list[TimedText]:
    """Cues of every embedded text subtitle track (mov_text, webvtt, subrip, ass)."""
    import av

    cues: list[TimedText] = []
    with av.open(str(path)) as container:
        for stream in container.streams.subtitles:
            language = stream.language or ""
            if language == "und":
                language = ""
            tb = stream.time_base
            for packet in container.demux(stream):
                if packet.pts is None or tb is None:
                    continue
                start = float(packet.pts * tb)
                end = start + float((packet.duration or 0) * tb)
                for sub in packet.decode():
                    rects = sub if hasattr(sub, "__iter__") else [sub]
                    for rect in rects:
                        text = _subtitle_text(rect)
                        if text:
                            cues.append(TimedText(round(start, 3), round(end, 3), text, language))
    return sorted(cues, key=lambda c: c.start)


def _subtitle_text(rect: object) -> str:
    """Plain text of one subtitle rectangle (ASS override tags and markup removed)."""
    raw = getattr(rect, "dialogue", None) or getattr(rect, "text", None) or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for token in ("\\N", "\\n"):
        text = text.replace(token, " ")
    while "{" in text and "}" in text.split("{", 1)[1]:
        head, rest = text.split("{", 1)
        text = head + rest.split("}", 1)[1]
    return " ".join(text.split())


def _default_ocr() -> tuple[OcrFn, dict[str, str]]:
    from deepfolder.ingest.ocr import ocr_image, ocr_model_info

    return ocr_image, ocr_model_info()


def _default_transcribe() -> tuple[TranscribeFn, dict[str, str]]:
    from deepfolder.ingest.asr import asr_model_info, transcribe

    return transcribe, asr_model_info()


OCR_REUSE_WIDTH = 640
"""Width of the grayscale copies compared before reusing the previous keyframe's OCR."""
OCR_REUSE_MAX_PIXELS = 8
"""At most this many pixels of those copies may differ clearly (by more than 48 gray
levels) for a keyframe to count as the same picture as the one before. Compression noise
on a static slide stays far below that level; a changed timecode or one changed word
does not (the 160-pixel thumbnails of keyframe detection are too coarse for this: on a
720p video a changed timecode moves 0.03 % of their pixels)."""


def _ocr_view(image: Image.Image) -> np.ndarray:
    height = max(1, round(OCR_REUSE_WIDTH * image.height / max(1, image.width)))
    return np.asarray(image.convert("L").resize((OCR_REUSE_WIDTH, height)), dtype=np.int16)


def _same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and int((np.abs(a - b) > 48).sum()) <= OCR_REUSE_MAX_PIXELS


def _ocr_keyframes(
    keyframes: list[Keyframe],
    ocr: OcrFn | None,
    out_dir: Path,
    index_dir: Path,
    stem: str,
) -> list[SavedKeyframe]:
    """Save each keyframe as JPEG and OCR it; a keyframe that shows the same picture as
    the one before (see ``OCR_REUSE_MAX_PIXELS``) reuses its OCR text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[SavedKeyframe] = []
    last_view = None
    last_text = ""
    for i, kf in enumerate(keyframes):
        file = out_dir / f"{stem}_{i + 1:04d}_{kf.t:09.3f}s.jpg"
        kf.image.convert("RGB").save(file, "JPEG", quality=90)
        view = _ocr_view(kf.image) if ocr is not None else None
        if ocr is None or view is None:
            text = ""
        elif last_view is not None and _same_picture(view, last_view):
            text = last_text
        else:
            text = "\n".join(line.text for line in ocr(kf.image) if line.text.strip())
        saved.append(SavedKeyframe(kf.t, file.relative_to(index_dir).as_posix(), text, kf.reason))
        last_view, last_text = view, text
    return saved


def extract_video(
    path: Path,
    ctx: ExtractContext,
    *,
    ocr: OcrFn | None = None,
    transcribe: TranscribeFn | None = None,
) -> ExtractResult:
    """Extract one video file. ``ocr`` / ``transcribe`` default to the shared engines."""
    settings = ctx.settings
    warnings: list[str] = []
    info: VideoInfo = probe_video(path)
    # work_dir is index_dir/work/<sha16>: keyframe paths are stored relative to index_dir.
    index_dir = ctx.work_dir.parent.parent

    keyframes = detect_keyframes(path, max_gap_s=settings.video_window_s)
    if info.duration <= 0 and keyframes:
        info.duration = keyframes[-1].t + (1 / info.fps if info.fps else 0.04)

    ocr_fn: OcrFn | None = None
    if settings.ocr:
        if ocr is not None:
            ocr_fn = ocr
        else:
            try:
                ocr_fn, models = _default_ocr()
                ctx.models.update(models)
            except ImportError as exc:
                warnings.append(f"{ctx.rel_path}: OCR unavailable ({exc}); no on-screen text")
    else:
        warnings.append(f"{ctx.rel_path}: OCR is off (ingest.ocr=false); no on-screen text")
    try:
        saved = _ocr_keyframes(keyframes, ocr_fn, ctx.work_dir / "keyframes", index_dir, "kf")
    except ExtractError as exc:
        warnings.append(f"{ctx.rel_path}: keyframe OCR failed: {exc}")
        saved = _ocr_keyframes(keyframes, None, ctx.work_dir / "keyframes", index_dir, "kf")

    speech: list[TimedText] = []
    language = settings.asr_language or ""
    if not settings.asr:
        asr_status = "disabled"
        warnings.append(f"{ctx.rel_path}: speech not transcribed (ingest.asr=false)")
    elif not info.has_audio:
        asr_status = "no audio track"
        warnings.append(f"{ctx.rel_path}: no audio track; only on-screen text is indexed")
    else:
        try:
            if transcribe is None:
                default, models = _default_transcribe()
                ctx.models.update(models)
                # the packaged Whisper model is joined under the configured cache
                transcribe = functools.partial(default, cache_dir=ctx.cache_dir)
            pieces, language = transcribe(path, language=settings.asr_language)
            speech = [
                TimedText(round(float(p.start), 3), round(float(p.end), 3), p.text.strip())
                for p in pieces
                if p.text.strip()
            ]
            asr_status = "ok"
        except (ImportError, ExtractError) as exc:
            asr_status = f"failed: {exc}"
            warnings.append(f"{ctx.rel_path}: speech not transcribed: {exc}")

    subtitles: list[TimedText] = []
    if info.subtitle_streams:
        try:
            subtitles = read_subtitles(path)
        except Exception as exc:  # a broken subtitle track must not lose the video
            warnings.append(f"{ctx.rel_path}: subtitle track unreadable: {exc}")

    changes = [k.t for k in keyframes if k.reason == "change"]
    windows = assign_to_windows(
        plan_windows(info.duration, changes, speech, settings.video_window_s),
        saved,
        speech,
        subtitles,
    )
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="video",
        title=ctx.rel_path.rsplit("/", 1)[-1],
        sha256=ctx.sha256,
        size=ctx.size,
        meta={
            "duration": round(info.duration, 3),
            "width": info.width,
            "height": info.height,
            "fps": round(info.fps, 3),
            "codec": info.codec,
            "keyframes": [k.to_dict() for k in saved],
            "speech": [s.to_dict() for s in speech],
            "subtitles": [s.to_dict() for s in subtitles],
            "language": language,
            "asr": asr_status,
        },
    )
    segments: list[Segment] = []
    for w in windows:
        text = w.text()
        if not text:
            continue  # silence over a picture without text: nothing to search or cite
        shown = w.keyframes[0] if w.keyframes else None  # the picture at the start
        locator = Locator(start=w.start, end=w.end, keyframe=shown.path if shown else None)
        segments.append(Segment.create(source.id, text, locator, seq=len(segments)))
    if not segments:
        warnings.append(f"{ctx.rel_path}: no speech, subtitles or on-screen text found")
    return ExtractResult(sources=[source], segments=segments, warnings=warnings)
