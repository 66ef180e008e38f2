"""transcript: timed lines of audio and video sources, each citing a real segment."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfolder.records import Locator, Segment, Source
from deepfolder.tools.base import ToolArgumentError
from deepfolder.tools.media import transcript
from memory_index import MemoryIndex
from tools.media_tool_helpers import make_context

SPEECH = [
    {"start": 1.0, "end": 4.0, "text": "Welcome to the lecture."},
    {"start": 4.5, "end": 9.0, "text": "Today we discuss safe harbor rules."},
    {"start": 40.0, "end": 44.0, "text": "Next, notice and takedown."},
]


def audio_index() -> tuple[MemoryIndex, list[Segment]]:
    source = Source(
        id="talks/lecture.mp3",
        path="talks/lecture.mp3",
        kind="audio",
        meta={"duration": 50.0, "language": "en", "speech": SPEECH},
    )
    first = Segment.create(
        source.id,
        "Welcome to the lecture.\nToday we discuss safe harbor rules.",
        Locator(start=1.0, end=9.0, chunk=1),
        seq=0,
    )
    second = Segment.create(
        source.id, "Next, notice and takedown.", Locator(start=40.0, end=44.0, chunk=2), seq=1
    )
    index = MemoryIndex()
    index.add([source], [first, second])
    return index, [first, second]


def test_whole_audio_transcript_lines_cite_their_windows(tmp_path: Path) -> None:
    index, (first, second) = audio_index()
    ctx = make_context(tmp_path, index)
    out = transcript(ctx, {"source": "lecture.mp3"})
    lines = out.text.splitlines()
    assert lines[1] == f"[00:01–00:04] Welcome to the lecture. ({first.id})"
    assert lines[2] == f"[00:04–00:09] Today we discuss safe harbor rules. ({first.id})"
    assert lines[3] == f"[00:40–00:44] Next, notice and takedown. ({second.id})"
    assert [ev.id for ev in out.evidence] == [first.id, second.id]
    assert set(ctx.seen) == {first.id, second.id}


def test_window_keeps_only_overlapping_speech(tmp_path: Path) -> None:
    index, (_first, second) = audio_index()
    ctx = make_context(tmp_path, index)
    out = transcript(ctx, {"source": "talks/lecture.mp3", "start": 30, "end": 60})
    assert "notice and takedown" in out.text and "Welcome" not in out.text
    assert [ev.id for ev in out.evidence] == [second.id]
    empty = transcript(ctx, {"source": "lecture.mp3", "start": 12, "end": 30})
    assert "No speech in this window" in empty.text and not empty.evidence


def test_video_segments_without_meta_use_their_speech_lines(tmp_path: Path) -> None:
    video = Source(id="class.mp4", path="class.mp4", kind="video", meta={"asr": "ok"})
    w1 = Segment.create(
        video.id, "screen: Agenda / 议程\nspeech: 今天讲避风港原则。", Locator(start=0.0, end=15.0)
    )
    w2 = Segment.create(video.id, "screen: Summary", Locator(start=15.0, end=30.0), seq=1)
    index = MemoryIndex()
    index.add([video], [w1, w2])
    out = transcript(make_context(tmp_path, index), {"source": "class.mp4"})
    assert f"[00:00–00:15] 今天讲避风港原则。 ({w1.id})" in out.text
    assert "Agenda" not in out.text and "Summary" not in out.text
    assert [ev.id for ev in out.evidence] == [w1.id]


def test_bad_arguments_go_back_to_the_model(tmp_path: Path) -> None:
    index, _ = audio_index()
    ctx = make_context(tmp_path, index)
    with pytest.raises(ToolArgumentError, match=r"lecture\.mp3"):
        transcript(ctx, {"source": "missing.wav"})
    with pytest.raises(ToolArgumentError, match="before start"):
        transcript(ctx, {"source": "lecture.mp3", "start": 20, "end": 10})


def test_long_transcript_is_cut_with_a_pointer_to_the_rest(tmp_path: Path) -> None:
    speech = [
        {"start": float(i * 5), "end": float(i * 5 + 4), "text": f"sentence {i} " + "x" * 80}
        for i in range(200)
    ]
    source = Source(id="long.wav", path="long.wav", kind="audio", meta={"speech": speech})
    seg = Segment.create(source.id, "all of it", Locator(start=0.0, end=1000.0))
    index = MemoryIndex()
    index.add([source], [seg])
    out = transcript(make_context(tmp_path, index), {"source": "long.wav"})
    assert "transcript continues" in out.text and len(out.text) < 8000
    assert "start=" in out.text.splitlines()[-2]


def test_citations_survive_the_chunker(tmp_path: Path) -> None:
    """A 30 s window longer than a chunk is split by the chunker; each sentence is still
    cited with a chunk that contains it."""
    from deepfolder.ingest.asr import SpeechSegment
    from deepfolder.ingest.audio import group_windows
    from deepfolder.ingest.chunk import chunk_segments
    from deepfolder.settings import IngestSettings

    pieces = [
        SpeechSegment(i * 3.0, i * 3.0 + 2.5, f"Sentence number {i} says something long enough.")
        for i in range(10)
    ]
    (window,) = group_windows(pieces, 30.0)
    raw = Segment.create("a.wav", "\n".join(p.text for p in window), Locator(start=0.0, end=29.5))
    chunks = chunk_segments([raw], IngestSettings(chunk_chars=120, chunk_overlap=20))
    assert len(chunks) > 2
    meta = {"speech": [{"start": p.start, "end": p.end, "text": p.text} for p in pieces]}
    source = Source(id="a.wav", path="a.wav", kind="audio", meta=meta)
    index = MemoryIndex()
    index.add([source], chunks)
    out = transcript(make_context(tmp_path, index), {"source": "a.wav"})
    by_id = {c.id: c for c in chunks}
    for line in out.text.splitlines()[1:-1]:
        text, cited = line.split("] ", 1)[1].rsplit(" (", 1)
        assert text[:12] in by_id[cited.rstrip(")")].text, line
