"""extract_video on a generated narrated slide video (fake OCR/ASR) and on real material."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfolder.ingest.base import ExtractContext
from deepfolder.ingest.video import extract_video
from deepfolder.settings import IngestSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_slide_video import (
    DEFAULT_SLIDES,
    VideoTruth,
    make_slide_video,
    missing_tools,
    render_slide,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video" / "auto-editor"
pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"missing {missing_tools()}")


@dataclass
class FakeLine:
    text: str


@dataclass
class FakeSpeech:
    start: float
    end: float
    text: str


class SlideOcr:
    """Fake OCR: recognises which known slide a frame shows (nearest rendered slide)."""

    def __init__(self, truth: VideoTruth) -> None:
        self.slides = [
            (np.asarray(render_slide(s, truth.width, truth.height).convert("L"), float), s)
            for s in DEFAULT_SLIDES
        ]
        self.calls = 0

    def __call__(self, image: Image.Image) -> list[FakeLine]:
        self.calls += 1
        gray = np.asarray(image.convert("L").resize(self.slides[0][0].shape[1::-1]), float)
        _, slide = min(self.slides, key=lambda pair: float(np.abs(pair[0] - gray).mean()))
        return [FakeLine(line) for line in slide.lines]


def fake_transcribe(truth: VideoTruth):  # type: ignore[no-untyped-def]
    calls: list[Path] = []

    def transcribe(audio: Path, *, language: str | None = None, **_: object):  # type: ignore[no-untyped-def]
        calls.append(audio)
        pieces = [FakeSpeech(s.speech_start, s.speech_end, s.narration) for s in truth.slides]
        return pieces, "en"

    transcribe.calls = calls  # type: ignore[attr-defined]
    return transcribe


@pytest.fixture(scope="module")
def slide_video(tmp_path_factory: pytest.TempPathFactory) -> VideoTruth:
    return make_slide_video(tmp_path_factory.mktemp("video"), with_subtitles=True)


def make_ctx(tmp_path: Path, **settings: object) -> ExtractContext:
    work = tmp_path / "index" / "work" / "0123456789abcdef"
    return ExtractContext(
        rel_path="talks/slides.mp4",
        sha256="0" * 64,
        size=1,
        settings=IngestSettings(**settings),  # type: ignore[arg-type]
        work_dir=work,
    )


def test_windows_follow_slides_with_their_text(slide_video: VideoTruth, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    ocr = SlideOcr(slide_video)
    result = extract_video(
        Path(slide_video.path), ctx, ocr=ocr, transcribe=fake_transcribe(slide_video)
    )
    assert result.warnings == []
    [source] = result.sources
    assert source.kind == "video" and source.id == "talks/slides.mp4"
    meta = source.meta
    assert meta["duration"] == pytest.approx(slide_video.duration, abs=0.1)
    assert (meta["width"], meta["height"], meta["fps"]) == (640, 360, 10.0)
    assert [k["t"] for k in meta["keyframes"]] == pytest.approx(
        [0.0, *slide_video.changes], abs=0.11
    )
    assert ocr.calls == len(slide_video.slides)
    assert len(result.segments) == len(slide_video.slides)
    index_dir = tmp_path / "index"
    for seg, slide in zip(result.segments, slide_video.slides, strict=True):
        loc = seg.locator
        assert loc.start == pytest.approx(slide.start, abs=0.11)
        assert loc.end == pytest.approx(slide.end, abs=0.11)
        assert loc.keyframe is not None and loc.keyframe.startswith("work/0123456789abcdef/")
        assert (index_dir / loc.keyframe).is_file()
        screen, speech, subtitle = seg.text.splitlines()
        assert screen.startswith("screen: ") and speech.startswith("speech: ")
        assert all(line in screen for line in slide.lines)
        assert speech == f"speech: {slide.narration}"
        assert subtitle == f"subtitle: {slide.subtitle}"
        others = [s for s in slide_video.slides if s is not slide]
        assert not any(line in seg.text for other in others for line in other.lines)


def test_asr_off_keeps_screen_text_with_warning(slide_video: VideoTruth, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, asr=False)
    transcribe = fake_transcribe(slide_video)
    result = extract_video(
        Path(slide_video.path), ctx, ocr=SlideOcr(slide_video), transcribe=transcribe
    )
    assert transcribe.calls == []  # type: ignore[attr-defined]
    assert any("ingest.asr=false" in w for w in result.warnings)
    assert result.sources[0].meta["asr"] == "disabled"
    assert len(result.segments) == len(slide_video.slides)
    assert all(s.text.startswith("screen: ") and "speech:" not in s.text for s in result.segments)


def test_video_without_audio_track(tmp_path: Path) -> None:
    truth = make_slide_video(tmp_path / "v", DEFAULT_SLIDES[:2], with_audio=False)
    transcribe = fake_transcribe(truth)
    result = extract_video(
        Path(truth.path), make_ctx(tmp_path), ocr=SlideOcr(truth), transcribe=transcribe
    )
    assert transcribe.calls == []  # type: ignore[attr-defined]
    assert result.sources[0].meta["asr"] == "no audio track"
    assert any("no audio track" in w for w in result.warnings)
    assert [s.locator.start for s in result.segments] == pytest.approx([0.0, 8.0], abs=0.11)


def test_corrupt_video_is_an_extract_error(tmp_path: Path) -> None:
    from deepfolder.ingest.base import ExtractError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(ExtractError, match=r"bad\.mp4"):
        extract_video(bad, make_ctx(tmp_path))


@pytest.mark.slow
def test_real_ocr_and_asr_on_slide_video(slide_video: VideoTruth, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    result = extract_video(Path(slide_video.path), ctx)
    assert "rapidocr" in ctx.models and "faster-whisper" in ctx.models
    assert len(result.segments) == len(slide_video.slides)
    for seg, slide in zip(result.segments, slide_video.slides, strict=True):
        screen = seg.text.splitlines()[0]
        assert slide.lines[1] in screen  # the Chinese body line, exactly
        spoken = seg.text.lower()
        assert "speech:" in spoken
        # whisper-base mishears a word or two of espeak; most words must be there.
        words = [w.strip(".,").lower() for w in slide.narration.split()]
        assert sum(w in spoken for w in words) >= 0.7 * len(words)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is absent")
def test_real_video_speech_and_silence(tmp_path: Path) -> None:
    """Speech at 0-17 s and 40-41 s: whisper decodes "...banana. Banana." as one segment
    13.7-40.3 s; asr.split_at_pauses cuts it at the 22 s gap between the words."""
    ctx = make_ctx(tmp_path, ocr=False)
    result = extract_video(DATA / "example.mp4", ctx)
    speech = result.sources[0].meta["speech"]
    assert speech and speech[0]["start"] < 3.0
    assert any(p["end"] > 12.0 and p["start"] < 17.5 for p in speech)
    assert not any(18.5 < (p["start"] + p["end"]) / 2 < 39.0 for p in speech)
    silent = [s for s in result.segments if s.locator.start >= 18.0 and s.locator.end <= 40.0]
    assert all("speech:" not in s.text for s in silent)
