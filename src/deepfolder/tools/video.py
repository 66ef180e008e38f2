"""``inspect_video``: look at one time window of a video, and only that window.

What the tool uses, all restricted to ``[start, end)``:

- the index segments of the video overlapping the window (their ids are returned and
  become citable), but of their content only the parts timed inside the window: the
  speech and subtitle pieces whose midpoint is in it (or that cover most of it) and the
  OCR text of the keyframes on screen during it — so a window never shows text from
  another slide just because an index segment is wider than the window;
- the keyframes on screen in the window, plus, when the question is about what is shown
  or what changes, frames decoded evenly inside the window (``perception.frames``);
- the vision model (``ctx.vision``, a ChatModel) over exactly those frames when one is
  configured. Its answer becomes new evidence with ``Locator(start, end)``, registered
  in ``ctx.created`` and ``ctx.seen``. The frame times sent are written in the
  observation, kept in the run's :class:`VisionCallLog` and appended to
  ``<run_dir>/vision_calls.jsonl``.

Without a vision model the observation says plainly that no frame was looked at and the
answer can rest only on OCR text and the transcript.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from deepfolder.perception.frames import (
    KnownKeyframe,
    WindowFrame,
    frames_in_window,
    keyframes_in_window,
)
from deepfolder.perception.vision import ask_about_frames, clock
from deepfolder.records import Evidence, Locator, Segment, Source, format_seconds
from deepfolder.tools.base import ToolArgumentError, ToolContext, ToolOutput, folder_has, tool
from deepfolder.tools.core import resolve_source_names

MAX_FRAMES = 6
"""Frames sent to the vision model for one window (keyframes first)."""
MIN_FRAME_GAP_S = 1.0

_VISUAL_WORDS = re.compile(
    r"show|see|look|visual|picture|image|frame|appear|change|happen|move|motion|colou?r|"
    r"draw|diagram|chart|graph|figure|gesture|scene|demonstrat|screen|display|wear|hold|"
    r"point|logo|photo|animation|画面|显示|出现|变化|变|看到|看见|图|颜色|动作|演示|展示|"
    r"场景|屏幕|镜头|手势|穿|拿|指",
    re.IGNORECASE,
)


def question_needs_frames(question: str) -> bool:
    """Whether the question asks about what is shown or what changes (then denser frames
    inside the window are worth decoding), not only about what is said or written."""
    return bool(_VISUAL_WORDS.search(question))


def _in_window(item: dict[str, Any], start: float, end: float) -> bool:
    """A timed piece belongs to the window when its midpoint is inside it, or when it
    covers at least half of the window (a long sentence around a short window)."""
    a, b = float(item["start"]), float(item["end"])
    mid = (a + b) / 2
    overlap = max(0.0, min(b, end) - max(a, start))
    return start <= mid < end or (end > start and overlap >= 0.5 * (end - start))


def _video_source(ctx: ToolContext, name: str) -> Source:
    for source_id in resolve_source_names(ctx, [name]):
        found = ctx.index.source(source_id.rstrip("#"))
        if found is not None and found.kind == "video":
            return found
    videos = [s.path for s in ctx.index.sources() if s.kind == "video"]
    raise ToolArgumentError(
        f"{name!r} is not an indexed video; videos in this folder: "
        f"{', '.join(videos) if videos else 'none'}"
    )


def _window(source: Source, start: float | None, end: float | None) -> tuple[float, float]:
    duration = float(source.meta.get("duration") or 0.0)
    lo = 0.0 if start is None else float(start)
    hi = duration if end is None else float(end)
    if lo < 0 or (duration and lo >= duration) or hi <= lo:
        raise ToolArgumentError(
            f"inspect_video(): window {lo:g}–{hi:g} s is outside {source.display_name}, which "
            f"lasts {duration:.1f} s ({format_seconds(duration)}); give 0 <= start < end <= "
            f"{duration:.1f}."
        )
    return lo, min(hi, duration) if duration else hi


@dataclass
class VisionCallLog:
    """The tool's vision-model calls in this run: ``ctx.state_of(VisionCallLog)``."""

    calls: list[dict[str, Any]] = field(default_factory=list)


def _record_vision_call(ctx: ToolContext, record: dict[str, Any]) -> None:
    ctx.state_of(VisionCallLog).calls.append(record)
    if ctx.run_dir is not None:
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        with (ctx.run_dir / "vision_calls.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


@tool(available=folder_has("video"))
def inspect_video(
    ctx: ToolContext,
    source: str,
    question: str,
    start: float | None = None,
    end: float | None = None,
) -> ToolOutput:
    """Look at one time window of a video: what is said (transcript, subtitles), what
    text is on screen (OCR of its keyframes), and, when a vision model is configured,
    what the frames of that window show. Only the window is used; ask for the part of the
    video your question is about. Cite the returned evidence ids.

    Args:
        source: The video's file name or source id.
        question: What you want to know about this part of the video.
        start: Start of the window in seconds (default: the beginning).
        end: End of the window in seconds (default: the end of the video).
    """
    if not question.strip():
        raise ToolArgumentError("inspect_video(): question is empty; say what to look for.")
    video = _video_source(ctx, source)
    lo, hi = _window(video, start, end)
    meta = video.meta
    language = ctx.language
    header = (
        f"{video.display_name}, window {format_seconds(lo)}–{format_seconds(hi)} "
        f"(video lasts {format_seconds(float(meta.get('duration') or 0))})"
    )

    segments = [
        s
        for s in ctx.index.segments_of(video.id)
        if s.locator.start is not None
        and s.locator.start < hi
        and (s.locator.end if s.locator.end is not None else s.locator.start) > lo
    ]
    evidence = [Evidence(s, video) for s in segments]
    ctx.remember(evidence)

    known = [
        KnownKeyframe(float(k["t"]), str(k["path"]), str(k.get("ocr", "")))
        for k in meta.get("keyframes", [])
    ]
    speech = [p for p in meta.get("speech", []) if _in_window(p, lo, hi)]
    subtitles = [p for p in meta.get("subtitles", []) if _in_window(p, lo, hi)]

    vision = ctx.vision
    dense = question_needs_frames(question)
    video_path = ctx.folder / video.path
    frames: list[WindowFrame] = []
    if vision is not None:  # decoding pictures only pays when a model will look at them
        frames = frames_in_window(
            video_path,
            lo,
            hi,
            max_frames=MAX_FRAMES,
            min_gap_s=MIN_FRAME_GAP_S,
            keyframes=known,
            index_dir=ctx.index_dir,
            dense=dense and video_path.exists(),
        )

    lines = [header]
    for seg in segments:
        lines.append(f"[{seg.id}] {seg.locator.label(language)}")
    screen = [(max(k.t, lo), k.ocr) for k in keyframes_in_window(known, lo, hi) if k.ocr]
    if screen:
        lines.append("On screen (OCR of the keyframes in this window):")
        lines += [f"  {clock(t)}: {' / '.join(ocr.splitlines())}" for t, ocr in screen]
    if speech:
        lines.append("Speech:")
        lines += [f"  {clock(p['start'])}–{clock(p['end'])}: {p['text']}" for p in speech]
    if subtitles:
        lines.append("Subtitles:")
        lines += [f"  {clock(p['start'])}–{clock(p['end'])}: {p['text']}" for p in subtitles]
    if not (screen or speech or subtitles):
        lines.append("Nothing is said, subtitled or written on screen in this window.")
    if meta.get("asr") not in (None, "ok"):
        lines.append(f"(Speech of this video was not transcribed: {meta.get('asr')}.)")

    if vision is None:
        lines.append(
            "Note: no vision model is configured, so no frame was looked at; what is known "
            "about this window comes only from the OCR text of its keyframes and the "
            "transcript. Do not describe the pictures beyond that."
        )
    elif not frames:
        lines.append("No frame of this window could be decoded; nothing was sent to the model.")
    else:
        context = "\n".join(lines[1:])
        cache_dir = ctx.index_dir / "vision_cache" if ctx.index_dir is not None else None
        answer = ask_about_frames(vision, question, frames, cache_dir=cache_dir, context=context)
        ctx.usage = ctx.usage + answer.usage
        sent = ", ".join(f"{clock(f.t)} ({f.origin})" for f in frames)
        _record_vision_call(
            ctx,
            {
                "tool": "inspect_video",
                "source": video.id,
                "start": lo,
                "end": hi,
                "question": question,
                "model": answer.model,
                "frame_times": answer.frame_times,
                "frame_origins": [f.origin for f in frames],
                "frame_sha256": answer.frame_hashes,
                "cached": answer.cached,
            },
        )
        text = (
            f"Vision model {answer.model} on {len(frames)} frame(s) of "
            f"{format_seconds(lo)}–{format_seconds(hi)} at {sent}: {answer.text}"
        )
        seg = Segment.create(video.id, text, Locator(start=lo, end=hi), seq=0)
        vision_ev = Evidence(seg, video)
        ctx.created.setdefault(vision_ev.id, vision_ev)
        ctx.remember([vision_ev])
        evidence.append(vision_ev)
        cached = " (cached answer)" if answer.cached else ""
        lines.append(f"Frames sent to {answer.model}{cached}: {sent}")
        lines.append(f"[{vision_ev.id}] what the frames show: {answer.text}")
    lines.append(ctx.status_line())
    return ToolOutput(text="\n".join(lines), evidence=evidence)


TOOLS = [inspect_video]
