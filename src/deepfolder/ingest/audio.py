"""Audio files: a timed transcript cut into ~20–40 s windows at speech-segment boundaries.

Whisper returns sentence-like segments of a few seconds each. They are grouped into
windows of about ``ingest.video_window_s`` seconds (30 by default): a window closes once
it reaches the target length, never grows beyond 4/3 of it when it already has 2/3, and
always closes at a pause of ``SILENCE_BREAK_S`` or more, so long silences are never
inside a window (VAD has already dropped them from the segments). A window's locator is
``Locator(start, end)`` of its first and last speech segment; its text is the segments'
text, one per line.

The whisper segments themselves are kept in ``Source.meta["speech"]`` (``[{start, end,
text}]``, the same shape the video extractor uses), so the ``transcript`` tool can show
sentence-level times while citing the window segments.

A file with no recognised speech still gets one segment naming the file and its length,
so it can be found (and the answer "no speech" cited).
"""

from __future__ import annotations

from pathlib import Path

from deepfolder.ingest.asr import SpeechSegment, asr_model_info, transcribe
from deepfolder.ingest.base import ExtractContext, ExtractError, ExtractResult
from deepfolder.records import Locator, Segment, Source, format_seconds

SILENCE_BREAK_S = 5.0


def media_duration(path: Path) -> float | None:
    """Duration in seconds from the container (PyAV), or None when unknown."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            if container.duration:
                return round(container.duration / 1_000_000, 2)
            stream = next(iter(container.streams.audio), None)
            if stream is not None and stream.duration and stream.time_base:
                return round(float(stream.duration * stream.time_base), 2)
    except Exception:  # undecodable: transcribe() reports it properly
        return None
    return None


def group_windows(pieces: list[SpeechSegment], target_s: float = 30.0) -> list[list[SpeechSegment]]:
    """Consecutive speech segments grouped into ~target-length windows (see module doc)."""
    windows: list[list[SpeechSegment]] = []
    for piece in pieces:
        if windows:
            current = windows[-1]
            begin, last_end = current[0].start, current[-1].end
            length = last_end - begin
            pause = piece.start - last_end
            too_long = piece.end - begin > target_s * 4 / 3 and length >= target_s * 2 / 3
            if pause < SILENCE_BREAK_S and length < target_s and not too_long:
                current.append(piece)
                continue
        windows.append([piece])
    return windows


def extract_audio(path: Path, ctx: ExtractContext) -> ExtractResult:
    """One audio source with transcript windows ``Locator(start, end)``."""
    if not ctx.settings.asr:
        raise ExtractError(
            f"{path.name}: speech recognition is off (ingest.asr = false, e.g. the 'fast' "
            'preset); enable it with {"ingest": {"asr": true}} in the config file or '
            "without --preset fast, then ingest again"
        )
    duration = media_duration(path)
    pieces, language = transcribe(path, language=ctx.settings.asr_language, cache_dir=ctx.cache_dir)
    ctx.models.update(asr_model_info())
    if duration is None and pieces:
        duration = pieces[-1].end
    segments: list[Segment] = []
    for seq, window in enumerate(group_windows(pieces, ctx.settings.video_window_s)):
        text = "\n".join(p.text for p in window)
        locator = Locator(start=window[0].start, end=window[-1].end)
        segments.append(Segment.create(ctx.rel_path, text, locator, seq=seq))
    warnings: list[str] = []
    if not segments:
        length = f"{format_seconds(duration)} long" if duration is not None else "unknown length"
        text = f"Audio {path.name}: {length}; no speech was recognised."
        segments.append(
            Segment.create(ctx.rel_path, text, Locator(start=0.0, end=duration or 0.0), seq=0)
        )
        warnings.append(f"{ctx.rel_path}: no speech recognised")
    source = Source(
        id=ctx.rel_path,
        path=ctx.rel_path,
        kind="audio",
        title=path.name,
        sha256=ctx.sha256,
        size=ctx.size,
        meta={
            "duration": duration,
            "language": language,
            "speech_seconds": round(sum(p.end - p.start for p in pieces), 2),
            "speech_segments": len(pieces),
            "speech": [{"start": p.start, "end": p.end, "text": p.text} for p in pieces],
        },
    )
    return ExtractResult(sources=[source], segments=segments, warnings=warnings)
