"""inspect_video on a generated narrated slide video: only the asked window is used."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deepfolder.ingest.base import ExtractContext
from deepfolder.ingest.video import extract_video
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import Evidence, Segment, Source
from deepfolder.settings import IngestSettings, Settings
from deepfolder.tools.base import ToolArgumentError, ToolContext
from deepfolder.tools.video import VisionCallLog, inspect_video, question_needs_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_slide_video import (
    DEFAULT_SLIDES,
    VideoTruth,
    make_slide_video,
    missing_tools,
    render_slide,
)

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"missing {missing_tools()}")


class StubIndex:
    """Just enough of the Index protocol for the video tool."""

    def __init__(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        self._sources = {s.id: s for s in sources}
        self._segments = list(segments)

    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        raise NotImplementedError

    def remove_sources(self, source_ids: Iterable[str]) -> None:
        raise NotImplementedError

    def search(self, query: str, options: Any) -> list[Evidence]:
        return []

    def get(self, evidence_id: str) -> Evidence | None:
        for seg in self._segments:
            if seg.id == evidence_id:
                return Evidence(seg, self._sources[seg.source_id])
        return None

    def source(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def segments_of(self, source_id: str) -> list[Segment]:
        return [s for s in self._segments if s.source_id == source_id]

    def count(self) -> int:
        return len(self._segments)

    def close(self) -> None:
        pass


@dataclass
class Line:
    text: str


@dataclass
class Piece:
    start: float
    end: float
    text: str


@dataclass
class Built:
    truth: VideoTruth
    folder: Path
    index_dir: Path
    index: StubIndex


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("case")
    folder = root / "folder"
    truth = make_slide_video(folder, name="talk.mp4")
    rendered = [
        (np.asarray(render_slide(s, truth.width, truth.height).convert("L"), float), s)
        for s in DEFAULT_SLIDES
    ]

    def ocr(image: Image.Image) -> list[Line]:
        gray = np.asarray(image.convert("L"), float)
        _, slide = min(rendered, key=lambda pair: float(np.abs(pair[0] - gray).mean()))
        return [Line(t) for t in slide.lines]

    def transcribe(audio: Path, *, language: str | None = None) -> tuple[list[Piece], str]:
        return [Piece(s.speech_start, s.speech_end, s.narration) for s in truth.slides], "en"

    index_dir = root / "index"
    ctx = ExtractContext("talk.mp4", "f" * 64, 1, IngestSettings(), index_dir / "work" / "ffff")
    result = extract_video(folder / "talk.mp4", ctx, ocr=ocr, transcribe=transcribe)
    return Built(truth, folder, index_dir, StubIndex(result.sources, result.segments))


def make_ctx(built: Built, tmp_path: Path, vision: Any = None) -> ToolContext:
    return ToolContext(
        index=built.index,  # type: ignore[arg-type]
        settings=Settings(),
        folder=built.folder,
        run_dir=tmp_path / "run",
        index_dir=built.index_dir,
        vision=vision,
    )


def image_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message.get("content"), list):
            parts += [p for p in message["content"] if p.get("type") == "image_url"]
    return parts


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_window_of_one_slide_shows_only_that_slide(built: Built, tmp_path: Path, n: int) -> None:
    slide = built.truth.slides[n]
    ctx = make_ctx(built, tmp_path)
    out = inspect_video(
        ctx,
        {"source": "talk.mp4", "question": "what is said", "start": slide.start, "end": slide.end},
    )
    for line in slide.lines:
        assert line in out.text
    assert slide.narration in out.text
    for other in built.truth.slides:
        if other is not slide:
            assert other.narration not in out.text
            assert not any(line in out.text for line in other.lines)
    assert len(out.evidence) == 1
    [ev] = out.evidence
    assert ev.segment.locator.start == pytest.approx(slide.start, abs=0.11)
    assert ev.id in ctx.seen and f"[{ev.id}]" in out.text
    assert "no vision model is configured" in out.text


def test_window_inside_a_slide_still_gets_its_screen_text(built: Built, tmp_path: Path) -> None:
    slide = built.truth.slides[1]
    out = inspect_video(
        make_ctx(built, tmp_path),
        {"source": "talk.mp4", "question": "q", "start": slide.start + 2, "end": slide.start + 4},
    )
    assert all(line in out.text for line in slide.lines)
    assert slide.narration in out.text  # the sentence covers most of the window


def test_fake_vision_gets_exactly_the_window_frames(built: Built, tmp_path: Path) -> None:
    model = FunctionModel(
        lambda messages, tools: "A slide about market analysis.", name="fake:eyes"
    )
    ctx = make_ctx(built, tmp_path, vision=model)
    slide = built.truth.slides[1]  # 8-15 s
    out = inspect_video(
        ctx,
        {"source": "talk.mp4", "question": "What is shown on the screen?", "start": 8, "end": 15},
    )
    assert len(model.calls) == 1
    messages = model.calls[0][0]
    [record] = ctx.state_of(VisionCallLog).calls
    times = record["frame_times"]
    assert len(image_parts(messages)) == len(times) > 1  # keyframe + denser sampled frames
    assert record["frame_origins"][0] == "keyframe" and "sampled" in record["frame_origins"]
    assert times[0] == pytest.approx(8.0, abs=0.11)
    assert all(8.0 <= t < 15.0 for t in times)
    logged = [
        json.loads(x) for x in (tmp_path / "run" / "vision_calls.jsonl").read_text().splitlines()
    ]
    assert logged[0]["frame_times"] == times
    # The answer is new evidence for exactly this window.
    vision_ev = out.evidence[-1]
    assert vision_ev.id in ctx.created and vision_ev.id in ctx.seen
    assert (vision_ev.segment.locator.start, vision_ev.segment.locator.end) == (8.0, 15.0)
    assert "market analysis" in vision_ev.segment.text
    assert vision_ev.citation_label() == "talk.mp4, 00:08–00:15"
    assert slide.lines[0] in out.text
    # The prompt carries this window's OCR, and nothing of the other slides.
    prompt = json.dumps(messages, ensure_ascii=False)
    assert slide.lines[0] in prompt
    assert not any(line in prompt for s in built.truth.slides if s is not slide for line in s.lines)


def test_vision_answers_are_cached_per_frames_and_question(built: Built, tmp_path: Path) -> None:
    shutil.rmtree(built.index_dir / "vision_cache", ignore_errors=True)
    model = FunctionModel(lambda messages, tools: "Title and two lines.", name="fake:cache")
    args = {"source": "talk.mp4", "question": "What text is shown?", "start": 15, "end": 21}
    first = inspect_video(make_ctx(built, tmp_path, vision=model), args)
    second = inspect_video(make_ctx(built, tmp_path, vision=model), args)
    assert len(model.calls) == 1
    assert "(cached answer)" in second.text and "(cached answer)" not in first.text
    assert first.evidence[-1].id == second.evidence[-1].id
    inspect_video(make_ctx(built, tmp_path, vision=model), {**args, "question": "Colours?"})
    assert len(model.calls) == 2


def test_speech_question_sends_keyframes_only(built: Built, tmp_path: Path) -> None:
    model = FunctionModel(lambda messages, tools: "ok", name="fake:speech")
    ctx = make_ctx(built, tmp_path, vision=model)
    inspect_video(
        ctx,
        {
            "source": "talk.mp4",
            "question": "what does the speaker say about risk",
            "start": 14,
            "end": 22,
        },
    )
    [record] = ctx.state_of(VisionCallLog).calls
    # The slide on screen at 14 s (reported at the window start), and the two changes inside.
    assert record["frame_times"] == pytest.approx([14.0, 15.0, 21.0], abs=0.11)
    assert record["frame_origins"] == ["keyframe"] * 3
    assert len(image_parts(model.calls[0][0])) == 3


@pytest.mark.parametrize(("start", "end"), [(31.0, 40.0), (-1.0, 5.0), (10.0, 5.0)])
def test_window_outside_the_video_names_the_duration(
    built: Built, tmp_path: Path, start: float, end: float
) -> None:
    with pytest.raises(ToolArgumentError, match=r"lasts 30\.0 s"):
        inspect_video(
            make_ctx(built, tmp_path),
            {"source": "talk.mp4", "question": "q", "start": start, "end": end},
        )


def test_unknown_or_non_video_source(built: Built, tmp_path: Path) -> None:
    with pytest.raises(ToolArgumentError, match=r"talk\.mp4"):
        inspect_video(make_ctx(built, tmp_path), {"source": "nothing.mp4", "question": "q"})


def test_question_classifier() -> None:
    assert question_needs_frames("What is shown on the slide?")
    assert question_needs_frames("画面中出现了什么变化")
    assert not question_needs_frames("What does the speaker say about revenue?")
