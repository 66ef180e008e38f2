"""Keyframe detection and window planning for videos (deepfolder.ingest.keyframes/video)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deepfolder.ingest.keyframes import detect_keyframes, probe_video
from deepfolder.ingest.video import TimedText, plan_windows, read_subtitles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_slide_video import Slide, make_slide_video, missing_tools

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video" / "auto-editor"
needs_tools = pytest.mark.skipif(bool(missing_tools()), reason=f"missing {missing_tools()}")

# Slide lengths that do not fall on the 0.5 s sampling grid, so the change time must be
# refined between samples to come out exact.
ODD_SLIDES = (
    Slide("第一页 One", ("苹果 apples",), 3.3),
    Slide("第二页 Two", ("香蕉 bananas",), 4.7),
    Slide("第三页 Three", ("樱桃 cherries",), 2.6),
)


def test_plan_windows_cuts_at_scene_changes_and_splits_long_stretches() -> None:
    windows = plan_windows(100.0, [10.0, 20.0], [], window_s=30.0)
    assert windows[:2] == [(0.0, 10.0), (10.0, 20.0)]
    tail = windows[2:]
    assert tail[0][0] == 20.0 and tail[-1][1] == 100.0
    assert all(b - a <= 30.0 for a, b in tail)  # 80 s split into 3 parts of ~26.7 s
    assert len(tail) == 3


def test_plan_windows_moves_splits_to_speech_pauses() -> None:
    speech = [TimedText(0.0, 24.0, "a"), TimedText(25.0, 60.0, "b")]
    windows = plan_windows(60.0, [], speech, window_s=30.0)
    assert windows == [(0.0, 24.5), (24.5, 60.0)]


def test_plan_windows_cuts_at_long_silence() -> None:
    speech = [TimedText(0.5, 17.0, "talk"), TimedText(40.0, 41.0, "end")]
    windows = plan_windows(42.4, [], speech, window_s=30.0)
    assert (17.0, 40.0) in windows
    assert windows[0] == (0.0, 17.0) and windows[-1] == (40.0, 42.4)


def test_plan_windows_merges_slivers() -> None:
    assert plan_windows(20.0, [10.0, 10.4], [], window_s=30.0) == [(0.0, 10.0), (10.0, 20.0)]


@needs_tools
def test_keyframes_are_the_slide_changes(tmp_path: Path) -> None:
    truth = make_slide_video(tmp_path, ODD_SLIDES, with_audio=False)
    info = probe_video(Path(truth.path))
    assert info.duration == pytest.approx(truth.duration, abs=0.15)
    assert not info.has_audio
    keyframes = detect_keyframes(Path(truth.path))
    assert [k.reason for k in keyframes] == ["start", "change", "change"]
    found = [k.t for k in keyframes if k.reason == "change"]
    # Frame-exact: the video runs at 10 fps, so one frame is 0.1 s.
    assert found == pytest.approx(truth.changes, abs=0.11)
    assert all(k.image.size == (truth.width, truth.height) for k in keyframes)


@needs_tools
def test_static_video_gets_interval_keyframes_only_with_max_gap(tmp_path: Path) -> None:
    truth = make_slide_video(tmp_path, (Slide("Only", ("one slide",), 7.0),), with_audio=False)
    assert [k.reason for k in detect_keyframes(Path(truth.path))] == ["start"]
    with_gap = detect_keyframes(Path(truth.path), max_gap_s=3.0)
    assert [k.reason for k in with_gap] == ["start", "interval", "interval"]
    assert [k.t for k in with_gap] == pytest.approx([0.0, 3.0, 6.0], abs=0.11)


@needs_tools
def test_subtitles_of_generated_video(tmp_path: Path) -> None:
    truth = make_slide_video(tmp_path, ODD_SLIDES[:2], with_audio=False, with_subtitles=False)
    assert read_subtitles(Path(truth.path)) == []
    slides = tuple(
        Slide(s.title, s.body, s.seconds, subtitle=f"cue {i}") for i, s in enumerate(ODD_SLIDES)
    )
    truth = make_slide_video(tmp_path, slides, with_audio=False, with_subtitles=True, name="s.mp4")
    cues = read_subtitles(Path(truth.path))
    assert [c.text for c in cues] == ["cue 0", "cue 1", "cue 2"]
    assert [c.start for c in cues] == pytest.approx([s.start + 0.5 for s in truth.slides])


@pytest.mark.data
@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is absent")
@pytest.mark.parametrize(("name", "offset"), [("mov_text.mp4", 0.523), ("webvtt.mkv", 0.546)])
def test_embedded_subtitle_tracks(name: str, offset: float) -> None:
    cues = read_subtitles(DATA / name)
    assert [c.text for c in cues] == ["oop", "boop"]
    assert cues[0].start == pytest.approx(offset, abs=0.01)
    assert cues[1].start == pytest.approx(offset + 1.0, abs=0.01)
    assert cues[0].end > cues[0].start
