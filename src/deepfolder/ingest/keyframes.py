"""Find the frames of a video where the picture changes: slide changes and scene cuts.

Why not a fixed number of frames, and why not ffmpeg's scene filter: a lecture shows a
slide for a minute and changes it in one frame; consecutive slides of one template differ
only in their text, and ffmpeg's scene score at such a change is only 0.07–0.09, under
every usual threshold (shared/PACKAGES.md). So we measure the change ourselves:

1. Decode the video (threaded) and take a sample every ``1 / sample_fps`` seconds
   (default 2 per second). Each sample becomes a small grayscale thumbnail (160 px wide).
2. The *change score* of a sample is the fraction of thumbnail pixels whose gray value
   moved by more than ``pixel_delta`` (24 of 255) since the previous sample. Compression
   noise moves pixels by a few levels, so it never counts; new text on a slide moves a few
   percent of the pixels by a lot. Measured: 5–6 % at a text-only slide change in a
   640×360 slide video, ≤ 0.35 % between samples of a static 720p camera shot.
3. A score above ``change_threshold`` (default 1 %) starts a new keyframe. Its time is
   refined to the first decoded frame between the two samples that already differs (so
   times are exact to one frame, not to half a second), and its image is taken once the
   picture has settled (the next sample no longer changes), so a cross-fade does not give
   a half-blended keyframe.
4. ``max_gap_s``: when nothing changes for that long (a talking head, a long slide) a
   frame is kept anyway, so every time window of the video has a picture.

For very long videos ``keyframes_only=True`` decodes only the stream's own keyframes
(``skip_frame="NONKEY"``), which is much faster but only as fine as the encoder's GOP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deepfolder.ingest.base import ExtractError

THUMB_WIDTH = 160
MAX_BUFFERED_FRAMES = 64
"""Frames kept between two samples for refining a change's time (≈ 2 s at 30 fps)."""


@dataclass(slots=True)
class VideoInfo:
    duration: float
    width: int
    height: int
    fps: float
    has_audio: bool
    subtitle_streams: int
    codec: str = ""


@dataclass(slots=True)
class Keyframe:
    t: float
    """Seconds from the start of the file where this picture first appears."""
    image: Image.Image = field(repr=False)
    reason: str
    """``start`` (first frame), ``change`` (the picture changed) or ``interval``
    (nothing changed for ``max_gap_s``)."""
    score: float = 0.0
    """The change score that triggered it (0 for start/interval)."""


def probe_video(path: Path) -> VideoInfo:
    """Duration, size, frame rate and the audio/subtitle streams of a video file."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ExtractError(f"{path}: no video stream found; is it an audio file?")
            stream = container.streams.video[0]
            duration = 0.0
            if container.duration:
                duration = container.duration / 1_000_000
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            rate = stream.average_rate or stream.guessed_rate
            return VideoInfo(
                duration=duration,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                fps=float(rate) if rate else 0.0,
                has_audio=bool(container.streams.audio),
                subtitle_streams=len(container.streams.subtitles),
                codec=stream.codec_context.name,
            )
    except ExtractError:
        raise
    except Exception as exc:  # PyAV raises InvalidDataError, OSError, …
        raise ExtractError(f"cannot open video {path}: {exc}") from exc


def thumbnail(image: Image.Image) -> np.ndarray:
    """The grayscale thumbnail change scores are computed on."""
    height = max(1, round(THUMB_WIDTH * image.height / max(1, image.width)))
    return np.asarray(image.convert("L").resize((THUMB_WIDTH, height)), dtype=np.int16)


def change_score(a: np.ndarray, b: np.ndarray, pixel_delta: int = 24) -> float:
    """Fraction of pixels whose gray level differs by more than ``pixel_delta``."""
    return float((np.abs(a - b) > pixel_delta).mean())


def _frames(path: Path, keyframes_only: bool) -> Iterator[tuple[float, object]]:
    """``(seconds from the start of the file, av.VideoFrame)`` in presentation order."""
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise ExtractError(f"cannot open video {path}: {exc}") from exc
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        tb = stream.time_base
        origin = float(stream.start_time * tb) if stream.start_time and tb else 0.0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                yield max(0.0, frame.time - origin), frame
        except av.error.InvalidDataError as exc:
            raise ExtractError(f"{path}: corrupt video data: {exc}") from exc


def _frame_thumb(frame: object) -> np.ndarray:
    """Thumbnail straight from the decoder's frame (scaled in swscale, cheap)."""
    width, height = frame.width, frame.height  # type: ignore[attr-defined]
    th = max(1, round(THUMB_WIDTH * height / max(1, width)))
    gray = frame.reformat(width=THUMB_WIDTH, height=th, format="gray")  # type: ignore[attr-defined]
    return gray.to_ndarray().astype(np.int16)


def detect_keyframes(
    path: Path,
    *,
    sample_fps: float = 2.0,
    change_threshold: float = 0.01,
    pixel_delta: int = 24,
    min_gap_s: float = 1.0,
    max_gap_s: float | None = None,
    settle_s: float = 1.5,
    keyframes_only: bool = False,
) -> list[Keyframe]:
    """Keyframes of the video at ``path``: the first frame, every change, and (with
    ``max_gap_s``) one frame per long unchanged stretch. See the module docstring."""
    step = 1.0 / sample_fps
    keyframes: list[Keyframe] = []
    next_sample = 0.0
    prev_thumb: np.ndarray | None = None
    between: list[tuple[float, object]] = []
    # A detected change waiting for the picture to settle: (time, frame, thumb, score, since)
    pending: tuple[float, object, np.ndarray, float, float] | None = None
    last_t = 0.0

    def commit(t: float, frame: object, reason: str, score: float) -> None:
        image = frame.to_image()  # type: ignore[attr-defined]
        keyframes.append(Keyframe(round(t, 3), image, reason, round(score, 4)))

    for t, frame in _frames(path, keyframes_only):
        last_t = t
        if not keyframes_only and t + 1e-6 < next_sample:
            if len(between) < MAX_BUFFERED_FRAMES:
                between.append((t, frame))
            continue
        next_sample = t + step
        thumb = _frame_thumb(frame)
        if prev_thumb is None:
            pending = (t, frame, thumb, 0.0, t)  # the first picture, committed once settled
            prev_thumb = thumb
            between = []
            continue
        score = change_score(thumb, prev_thumb, pixel_delta)
        changed = score > change_threshold
        if pending is not None:
            p_t, _, _, p_score, since = pending
            if not changed or t - since >= settle_s:
                # Settled (or waited long enough): keep the latest picture of the change.
                frame_to_keep = frame if changed else pending[1]
                reason = "start" if not keyframes else "change"
                commit(p_t, frame_to_keep, reason, p_score)
                pending = None
            else:
                pending = (p_t, frame, thumb, p_score, since)
        elif changed and (not keyframes or t - keyframes[-1].t >= min_gap_s):
            change_t = t
            for bt, bframe in between:  # the first in-between frame that already differs
                if change_score(_frame_thumb(bframe), prev_thumb, pixel_delta) > change_threshold:
                    change_t = bt
                    break
            pending = (change_t, frame, thumb, score, t)
        elif max_gap_s and keyframes and t - keyframes[-1].t >= max_gap_s:
            commit(t, frame, "interval", 0.0)
        prev_thumb = thumb
        between = []
    if pending is not None:
        commit(pending[0], pending[1], "change" if keyframes else "start", pending[3])
    if not keyframes and last_t == 0.0 and prev_thumb is None:
        raise ExtractError(f"{path}: no decodable video frames")
    return keyframes
