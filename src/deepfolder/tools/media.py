"""``transcript``: the timed transcript of an audio or video file, or of a time window.

Lines come from the finest timing the index has:

- ``Source.meta["speech"]`` (``[{start, end, text}]``, written by the audio and video
  extractors): one line per recognised sentence, each cited with the index segment that
  holds it (the segment overlapping the sentence's midpoint whose text contains its
  beginning, else the first overlapping one), so every line's evidence id is citable and
  really contains the words; a video without speech falls back to
  ``meta["subtitles"]``;
- otherwise the index segments themselves: audio segments whole, video segments only
  their ``speech:`` / ``subtitle:`` lines.

Each line reads ``[mm:ss–mm:ss] text (E…)``.
"""

from __future__ import annotations

from typing import Any

from deepfolder.records import Evidence, Segment, Source, format_seconds
from deepfolder.tools.base import ToolArgumentError, ToolContext, ToolOutput, folder_has, tool

MAX_CHARS = 6000
"""Observation budget; a longer transcript ends with how to ask for the rest."""
MEDIA_KINDS = ("audio", "video")


def _media_source(ctx: ToolContext, name: str) -> Source:
    name = name.strip().strip("[]\"'")
    media = [s for s in ctx.index.sources() if s.kind in MEDIA_KINDS]
    ev = ctx.resolve(name) if name.startswith("E") else None
    if ev is not None and ev.source.kind in MEDIA_KINDS:
        return ev.source
    exact = [s for s in media if name in (s.id, s.path, s.display_name)]
    matches = exact or [s for s in media if name and name.lower() in s.display_name.lower()]
    if not matches:
        known = ", ".join(s.display_name for s in media[:20]) or "none"
        raise ToolArgumentError(
            f"no audio or video file named {name!r}; audio/video indexed: {known}"
        )
    if len(matches) > 1:
        listed = ", ".join(s.id for s in matches[:10])
        raise ToolArgumentError(f"{name!r} matches several files ({listed}); give the full id.")
    return matches[0]


def _overlaps(a_start: float, a_end: float, lo: float, hi: float) -> bool:
    return a_end >= lo and a_start <= hi


def _timed_segments(ctx: ToolContext, source: Source) -> list[Segment]:
    segs = [s for s in ctx.index.segments_of(source.id) if s.locator.start is not None]
    return sorted(segs, key=lambda s: (s.locator.start or 0.0, s.seq))


def _seg_span(seg: Segment) -> tuple[float, float]:
    start = seg.locator.start or 0.0
    return start, seg.locator.end if seg.locator.end is not None else start


def _speech_text(source: Source, seg: Segment) -> str:
    """The spoken part of a segment: a video window's speech/subtitle lines, or all."""
    if source.kind != "video":
        return " ".join(seg.text.split("\n")).strip()
    spoken = []
    for line in seg.text.splitlines():
        for prefix in ("speech:", "subtitle:"):
            if line.startswith(prefix):
                spoken.append(line[len(prefix) :].strip())
    return " ".join(spoken)


def _cite(piece: dict[str, Any], segments: list[Segment]) -> Segment | None:
    start, end = float(piece["start"]), float(piece["end"])
    mid = (start + end) / 2
    around = [s for s in segments if _overlaps(*_seg_span(s), mid, mid)]
    around = around or [s for s in segments if _overlaps(*_seg_span(s), start, end)]
    head = " ".join(str(piece["text"]).split())[:12]
    for seg in around:
        if head and head in " ".join(seg.text.split()):
            return seg
    return around[0] if around else None


def transcript_lines(
    ctx: ToolContext, source: Source, lo: float, hi: float
) -> list[tuple[float, float, str, Segment]]:
    """``(start, end, text, cited segment)`` inside ``[lo, hi]``, in time order."""
    segments = _timed_segments(ctx, source)
    pieces = source.meta.get("speech") or source.meta.get("subtitles") or []
    lines = []
    if pieces:
        for piece in pieces:
            start, end = float(piece["start"]), float(piece["end"])
            text = str(piece.get("text", "")).strip()
            if not text or not _overlaps(start, end, lo, hi):
                continue
            seg = _cite(piece, segments)
            if seg is not None:
                lines.append((start, end, text, seg))
        return lines
    for seg in segments:
        start, end = _seg_span(seg)
        text = _speech_text(source, seg)
        if text and _overlaps(start, end, lo, hi):
            lines.append((start, end, text, seg))
    return lines


@tool(available=folder_has(*MEDIA_KINDS))
def transcript(
    ctx: ToolContext, source: str, start: float | None = None, end: float | None = None
) -> ToolOutput:
    """The timed transcript of an audio or video file, whole or inside a time window.
    Each line is [mm:ss–mm:ss] text (evidence id); cite the ids.

    Args:
        source: The audio/video file name or id from list_sources().
        start: Start of the window in seconds (default: the beginning).
        end: End of the window in seconds (default: the end).
    """
    src = _media_source(ctx, source)
    lo = 0.0 if start is None else max(0.0, float(start))
    hi = float("inf") if end is None else float(end)
    if hi < lo:
        raise ToolArgumentError(f"transcript(): end ({end}) is before start ({start}).")
    lines = transcript_lines(ctx, src, lo, hi)
    window = (
        ""
        if start is None and end is None
        else (
            f" from {format_seconds(lo)} to " + ("the end" if end is None else format_seconds(hi))
        )
    )
    head = f"Transcript of {src.display_name}{window}"
    if src.meta.get("language"):
        head += f" (language: {src.meta['language']})"
    out, used = [head + ":"], 0
    shown: list[Evidence] = []
    for n, (a, b, text, seg) in enumerate(lines):
        entry = f"[{format_seconds(a)}–{format_seconds(b)}] {text} ({seg.id})"
        if used + len(entry) > MAX_CHARS and n:
            out.append(
                f"… transcript continues; call transcript(source={src.display_name!r}, "
                f"start={a:g}) for the rest."
            )
            break
        out.append(entry)
        used += len(entry)
        if seg.id not in {ev.id for ev in shown}:
            shown.append(Evidence(seg, src))
    if not lines:
        asr = src.meta.get("asr")
        reason = f" (speech recognition: {asr})" if asr and asr != "ok" else ""
        out.append(f"No speech in this {'window' if window else 'file'}{reason}.")
    ctx.remember(shown)
    out.append(ctx.status_line())
    return ToolOutput(text="\n".join(out), evidence=shown)


TOOLS = [transcript]
