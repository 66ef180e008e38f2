"""Frames of a video inside one time window, for looking at what the question asks about.

The index already holds keyframes (one per slide/scene change, see
:mod:`deepfolder.ingest.keyframes`). A question about what is *shown* or what *changes*
inside a window may need more than those: :func:`frames_in_window` reuses the window's
keyframes first and then decodes evenly spaced extra frames inside the window, never
closer than ``min_gap_s`` to a frame already chosen, up to ``max_frames`` in all.
Nothing outside ``[start, end]`` is ever returned.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from deepfolder.ingest.base import ExtractError


@dataclass(slots=True)
class WindowFrame:
    t: float
    """Seconds from the start of the video."""
    image: Image.Image = field(repr=False)
    origin: str
    """``keyframe`` (from the index) or ``sampled`` (decoded now)."""
    path: str | None = None
    """The keyframe's path relative to the index directory, when it is one."""
    ocr: str | None = None

    def sha256(self) -> str:
        """Content hash of the picture (its pixels), for caching answers about it."""
        rgb = self.image.convert("RGB")
        digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode())
        digest.update(rgb.tobytes())
        return digest.hexdigest()

    def jpeg_bytes(self, max_side: int = 1024, quality: int = 85) -> bytes:
        """The frame as JPEG, scaled down so its long side is at most ``max_side``."""
        rgb = self.image.convert("RGB")
        scale = max_side / max(rgb.size)
        if scale < 1:
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)))
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class KnownKeyframe:
    t: float
    path: str
    ocr: str = ""


def decode_frames_at(video_path: Path, times: Sequence[float]) -> list[tuple[float, Image.Image]]:
    """The first frame at or after each time (one seek per time, so sparse times in a long
    video stay cheap). Times past the last frame give the last frame."""
    import av

    out: list[tuple[float, Image.Image]] = []
    try:
        with av.open(str(video_path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base
            if tb is None:
                raise ExtractError(f"{video_path}: video stream has no time base; cannot seek")
            origin = float(stream.start_time * tb) if stream.start_time else 0.0
            for target in sorted(times):
                container.seek(int((target + origin) / tb), stream=stream, backward=True)
                chosen = None
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    chosen = (max(0.0, frame.time - origin), frame)
                    if chosen[0] >= target - 1e-3:
                        break
                if chosen is not None:
                    out.append((round(chosen[0], 3), chosen[1].to_image()))
    except av.error.FFmpegError as exc:
        raise ExtractError(f"cannot decode frames of {video_path}: {exc}") from exc
    return out


def keyframes_in_window(
    keyframes: Sequence[KnownKeyframe], start: float, end: float
) -> list[KnownKeyframe]:
    """Keyframes that show during ``[start, end)``: those inside it and the one already on
    screen at ``start``. A keyframe exactly at ``end`` belongs to the next window."""
    ordered = sorted(keyframes, key=lambda k: k.t)
    inside = [k for k in ordered if start <= k.t < end or k.t == start]
    before = [k for k in ordered if k.t < start]
    if before and not any(k.t == start for k in inside):
        inside.insert(0, before[-1])
    return inside


def frames_in_window(
    video_path: Path,
    start: float,
    end: float,
    *,
    max_frames: int = 6,
    min_gap_s: float = 1.0,
    keyframes: Sequence[KnownKeyframe] = (),
    index_dir: Path | None = None,
    dense: bool = True,
) -> list[WindowFrame]:
    """Frames showing in ``[start, end]``: the window's keyframes first (the one on screen
    at ``start`` is reported at ``start``), then, when ``dense``, evenly spaced frames
    decoded inside the window, in time order, at most ``max_frames``.

    A keyframe whose image file is missing from ``index_dir`` is decoded from the video.
    """
    if end < start:
        raise ValueError(f"window end {end} is before its start {start}")
    chosen: list[WindowFrame] = []
    for kf in keyframes_in_window(keyframes, start, end)[:max_frames]:
        t = max(kf.t, start)
        file = index_dir / kf.path if index_dir is not None else None
        if file is not None and file.exists():
            with Image.open(file) as img:
                image = img.convert("RGB")
        else:
            decoded = decode_frames_at(video_path, [t])
            if not decoded:
                continue
            image = decoded[0][1]
        chosen.append(WindowFrame(t, image, "keyframe", kf.path, kf.ocr))
    room = max_frames - len(chosen)
    if dense and room > 0 and end > start:
        slots = max(room, 1)
        candidates = [start + (i + 0.5) * (end - start) / slots for i in range(slots)]
        taken = [f.t for f in chosen]
        wanted: list[float] = []
        for t in candidates:
            if all(abs(t - other) >= min_gap_s for other in [*taken, *wanted]):
                wanted.append(round(t, 3))
        for t, image in decode_frames_at(video_path, wanted):
            if start <= t < end or t == start:
                chosen.append(WindowFrame(t, image, "sampled"))
    return sorted(chosen, key=lambda f: f.t)
