"""Helpers shared by the speech tests: synthetic clips (espeak-ng) and error rates."""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from deepfolder.eval.text_metrics import edit_distance

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SPEECH = DATA / "speech"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
needs_speech_data = pytest.mark.skipif(not SPEECH.exists(), reason="../shared/data/speech absent")


def espeak(text: str, path: Path, *, speed: int = 150) -> Path:
    """An English clip of ``text`` spoken by espeak-ng (22.05 kHz mono WAV)."""
    subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(path), text], check=True)
    return path


def concat_with_silence(parts: list[Path | float], out: Path) -> Path:
    """Concatenate WAV clips (same format) and silences given in seconds."""
    clips = [p for p in parts if isinstance(p, Path)]
    with wave.open(str(clips[0])) as first:
        params = first.getparams()
    frames = []
    for part in parts:
        if isinstance(part, Path):
            with wave.open(str(part)) as clip:
                frames.append(clip.readframes(clip.getnframes()))
        else:
            count = int(part * params.framerate)
            frames.append(b"\x00" * count * params.sampwidth * params.nchannels)
    with wave.open(str(out), "wb") as dst:
        dst.setparams(params)
        for block in frames:
            dst.writeframes(block)
    return out


def word_error_rate(ref: str, hyp: str) -> float:
    """WER over lower-cased words, punctuation ignored."""
    words = re.compile(r"[a-z0-9']+")
    r, h = words.findall(ref.lower()), words.findall(hyp.lower())
    return edit_distance(r, h) / max(1, len(r))
