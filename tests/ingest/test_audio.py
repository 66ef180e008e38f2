"""The audio extractor: transcript windows with start/end seconds, silence skipped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from speech_helpers import concat_with_silence, espeak, needs_espeak, word_error_rate

from deepfolder.ingest.asr import SpeechSegment
from deepfolder.ingest.audio import extract_audio, group_windows
from deepfolder.ingest.base import ExtractContext, ExtractError
from deepfolder.settings import IngestSettings


def context(
    path: Path, tmp_path: Path, cache_dir: Path | None = None, **settings: object
) -> ExtractContext:
    data = path.read_bytes()
    return ExtractContext(
        rel_path=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        settings=IngestSettings(**settings),  # type: ignore[arg-type]
        work_dir=tmp_path / "work",
        cache_dir=cache_dir,
    )


def seg(start: float, end: float) -> SpeechSegment:
    return SpeechSegment(start, end, f"{start:g}-{end:g}")


def test_windows_reach_the_target_then_close() -> None:
    pieces = [seg(i * 6, i * 6 + 5.5) for i in range(12)]  # continuous speech, 72 s
    windows = group_windows(pieces, target_s=30)
    lengths = [w[-1].end - w[0].start for w in windows]
    assert all(20 <= n <= 40 for n in lengths[:-1]), lengths
    assert [p for w in windows for p in w] == pieces  # nothing lost, order kept


def test_windows_break_at_long_silence() -> None:
    pieces = [seg(0, 4), seg(4.5, 9), seg(30, 34)]
    windows = group_windows(pieces, target_s=30)
    assert [[p.start for p in w] for w in windows] == [[0, 4.5], [30]]


def test_windows_never_grow_far_past_the_target() -> None:
    pieces = [seg(0, 25), seg(25, 50)]
    assert len(group_windows(pieces, target_s=30)) == 2


def test_asr_disabled_says_how_to_enable(tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    path.write_bytes(b"RIFF")
    with pytest.raises(ExtractError, match=r"talk\.wav.*ingest\.asr = false.*asr.: true"):
        extract_audio(path, context(path, tmp_path, asr=False))


def test_transcribe_gets_the_context_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whisper model is joined under settings.cache_dir, not the default cache."""
    import deepfolder.ingest.audio as audio

    seen: list[object] = []

    def fake_transcribe(
        path: Path, *, language: str | None = None, cache_dir: object = None
    ) -> tuple[list[SpeechSegment], str]:
        seen.append(cache_dir)
        return [SpeechSegment(0.5, 2.0, "hello there")], "en"

    monkeypatch.setattr(audio, "transcribe", fake_transcribe)
    path = tmp_path / "talk.wav"
    path.write_bytes(b"RIFF")
    result = extract_audio(path, context(path, tmp_path, cache_dir=tmp_path / "mycache"))
    assert seen == [tmp_path / "mycache"]
    assert result.segments[0].text == "hello there"


@pytest.mark.slow  # ~8-13 s under load: joins the model, then two ASR passes
@needs_espeak
def test_two_utterances_around_a_silence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default_cache = tmp_path / "default-cache"
    monkeypatch.setenv("DEEPFOLDER_CACHE", str(default_cache))
    first = espeak("Please bring the report about renewable energy.", tmp_path / "a.wav")
    second = espeak("The meeting starts at nine tomorrow morning.", tmp_path / "b.wav")
    path = concat_with_silence([1.0, first, 10.0, second, 1.0], tmp_path / "talk.wav")
    ctx = context(path, tmp_path, cache_dir=tmp_path / "cache")
    result = extract_audio(path, ctx)
    assert (tmp_path / "cache" / "models" / "whisper-base-ct2" / "model.bin").is_file()
    assert not default_cache.exists()  # the model went to ctx.cache_dir only

    (source,) = result.sources
    assert source.kind == "audio" and source.meta["language"] == "en"
    assert source.meta["duration"] == pytest.approx(
        1 + 10 + 1 + 2 * 2.6, abs=2.5
    )  # two ~2.6 s utterances
    assert len(result.segments) == 2  # the 10 s silence separates two windows
    one, two = result.segments
    assert one.locator.start is not None and one.locator.end is not None
    assert 0.5 <= one.locator.start <= 1.6 and one.locator.end <= 5.0
    assert two.locator.start is not None and two.locator.start >= 12.0  # silence skipped
    assert word_error_rate("Please bring the report about renewable energy.", one.text) <= 0.2
    assert "meeting" in two.text.lower()
    assert "faster-whisper" in ctx.models
