"""Speech recognition: the packaged whisper model, Mandarin + English, error rates."""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest
from speech_helpers import (
    SPEECH,
    espeak,
    needs_espeak,
    needs_speech_data,
    word_error_rate,
)

from deepfolder.eval.text_metrics import char_error_rate
from deepfolder.ingest.asr import (
    MODEL_BIN_SHA256,
    SpeechSegment,
    asr_model_info,
    ensure_whisper_model,
    split_at_pauses,
    to_simplified,
    transcribe,
)
from deepfolder.ingest.base import ExtractError


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One joined model for the module (the join writes 145 MB)."""
    root = tmp_path_factory.mktemp("cache")
    ensure_whisper_model(root)
    return root


def test_model_is_joined_once_verified_and_rejoined_when_damaged(cache_dir: Path) -> None:
    model_dir = ensure_whisper_model(cache_dir)
    target = model_dir / "model.bin"
    stamp = json.loads((model_dir / "model.bin.verified").read_text("utf-8"))
    assert stamp["sha256"] == MODEL_BIN_SHA256 and stamp["size"] == target.stat().st_size
    assert {p.name for p in model_dir.iterdir()} >= {"config.json", "tokenizer.json"}
    assert not list(model_dir.glob("*.tmp-*"))
    mtime = target.stat().st_mtime_ns
    assert ensure_whisper_model(cache_dir) == model_dir
    assert target.stat().st_mtime_ns == mtime  # not joined again
    with target.open("r+b") as fh:  # damage it: the stamp no longer matches
        fh.truncate(1000)
    ensure_whisper_model(cache_dir)
    assert target.stat().st_size == stamp["size"]


def test_silence_gives_no_segments(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 16000 * 3)
    segments, _language = transcribe(path, cache_dir=cache_dir)
    assert segments == []


def test_not_audio_is_an_extract_error(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio", encoding="utf-8")
    with pytest.raises(ExtractError, match=r"notes\.mp3"):
        transcribe(path, cache_dir=cache_dir)


@needs_espeak
def test_english_clip_made_with_espeak(tmp_path: Path, cache_dir: Path) -> None:
    said = "Please bring the report about renewable energy."
    clip = espeak(said, tmp_path / "en.wav")
    segments, language = transcribe(clip, cache_dir=cache_dir)
    assert language == "en"
    text = " ".join(s.text for s in segments)
    assert word_error_rate(said, text) <= 0.15, text
    assert 0.0 <= segments[0].start < segments[-1].end <= 4.0


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str


def test_segment_is_split_where_words_pause() -> None:
    """The example.mp4 case: whisper's one segment 13.72-40.3 s, words 17.0 -> 39.76 s."""
    text = " When the time reaches 40 seconds, I will say banana. Banana."
    words = [
        Word(13.72, 14.06, " When"),
        Word(14.06, 14.24, " the"),
        Word(14.24, 14.48, " time"),
        Word(14.48, 14.84, " reaches"),
        Word(14.84, 15.32, " 40"),
        Word(15.32, 15.82, " seconds,"),
        Word(16.12, 16.2, " I"),
        Word(16.2, 16.34, " will"),
        Word(16.34, 16.64, " say"),
        Word(16.64, 17.0, " banana."),
        Word(39.76, 40.3, " Banana."),
    ]
    assert split_at_pauses(text, 13.72, 40.3, words) == [
        SpeechSegment(13.72, 17.0, "When the time reaches 40 seconds, I will say banana."),
        SpeechSegment(39.76, 40.3, "Banana."),
    ]


def test_segment_without_long_pause_keeps_whispers_text() -> None:
    words = [Word(3.691, 4.0, "你好"), Word(5.4, 6.004, "世界")]  # 1.4 s: not a split
    assert split_at_pauses(" 你好，世界。", 1.0, 7.0, words) == [
        SpeechSegment(3.69, 6.0, "你好，世界。")  # timed by the words, not the segment
    ]
    assert split_at_pauses(" 你好，世界。", 1.0, 7.0, words, max_gap=1.0) == [
        SpeechSegment(3.69, 4.0, "你好"),
        SpeechSegment(5.4, 6.0, "世界"),
    ]


def test_segment_without_words_keeps_its_own_times() -> None:
    assert split_at_pauses(" Hello.", 1.234, 2.0, None) == [SpeechSegment(1.23, 2.0, "Hello.")]
    assert split_at_pauses(" Hello.", 1.234, 2.0, []) == [SpeechSegment(1.23, 2.0, "Hello.")]


def test_threads_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest pipeline sets $DEEPFOLDER_THREADS in each worker to its share of cores."""
    from deepfolder.ingest.asr import _default_threads

    monkeypatch.setenv("DEEPFOLDER_THREADS", "1")
    assert _default_threads() == 1
    monkeypatch.setenv("DEEPFOLDER_THREADS", "3")
    assert _default_threads() == 3
    monkeypatch.delenv("DEEPFOLDER_THREADS")
    assert 1 <= _default_threads() <= 4


def test_traditional_to_simplified() -> None:
    assert to_simplified("歡迎大家來體驗達摩院推出的語音識別模型") == (
        "欢迎大家来体验达摩院推出的语音识别模型"
    )


def test_which_text_is_converted_to_simplified() -> None:
    from deepfolder.ingest.asr import _is_chinese

    assert _is_chinese("hello", "zh")  # harmless: t2s leaves Latin text alone
    assert _is_chinese("歡迎", "en")  # a Chinese segment inside an English file
    assert not _is_chinese("東京へ行きます", "en")  # kana: Japanese, keep its kanji
    assert not _is_chinese("東京", "ja")
    assert not _is_chinese("Software zu verwenden", "de")


def test_model_info() -> None:
    info = asr_model_info()
    assert info["faster-whisper"] == "1.2.1"
    assert "base" in info["whisper"] and MODEL_BIN_SHA256[:12] in info["whisper"]


@pytest.mark.data
@needs_speech_data
def test_mandarin_clip_in_simplified_characters(cache_dir: Path) -> None:
    clip = SPEECH / "funasr" / "asr_example.wav"
    reference = (SPEECH / "funasr" / "asr_example.ref.txt").read_text("utf-8").strip()
    segments, language = transcribe(clip, cache_dir=cache_dir)
    text = "".join(s.text for s in segments)
    assert language == "zh"
    assert char_error_rate(reference, text) <= 0.1, text
    assert "歡" not in text and "欢迎" in text  # converted to simplified


@pytest.mark.data
@needs_speech_data
def test_forced_language_is_reported(cache_dir: Path) -> None:
    clip = SPEECH / "funasr" / "asr_example.wav"
    segments, language = transcribe(clip, language="zh", cache_dir=cache_dir)
    assert language == "zh" and segments


@pytest.mark.slow  # a 60 s clip: ~10-25 s under load
@pytest.mark.data
@needs_speech_data
def test_language_switch_inside_one_file(cache_dir: Path) -> None:
    """multilingual.mp3 is English then German: both halves are transcribed."""
    segments, language = transcribe(
        SPEECH / "faster-whisper" / "multilingual.mp3", cache_dir=cache_dir
    )
    text = " ".join(s.text for s in segments)
    assert language == "en"
    assert "Permission is hereby granted" in text
    assert "Software zu verwenden" in text
    assert any(s.start >= 30 for s in segments if "Software" in s.text)


def test_no_download_is_attempted(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model is loaded from the joined local directory: the hub is never asked."""
    import faster_whisper.transcribe as fw_transcribe
    import huggingface_hub

    import deepfolder.ingest.asr as asr

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("faster-whisper tried to download a model")

    monkeypatch.setattr(fw_transcribe, "download_model", forbidden)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", forbidden)
    monkeypatch.setattr(asr, "_models", {})  # force a fresh model load
    path = tmp_path / "short.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 8000)
    segments, _language = transcribe(path, cache_dir=cache_dir)
    assert segments == []
    assert asr._models  # the model was built, without a download
