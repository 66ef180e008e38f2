"""Speech recognition quality and speed on the ../shared/data/speech clips.

For each clip with a reference: character error rate (Mandarin: CJK + alphanumerics,
punctuation and spaces ignored) or word error rate (English/German: lower-cased words,
punctuation ignored), and seconds of processing per second of audio (the real-time factor;
the model is loaded before timing starts). The stereo clip has one speaker per channel, so
each channel is written to its own WAV and scored against its own reference. Clips
without a reference are transcribed and shown, not scored. An English clip made with
espeak-ng (when installed) is scored too.

References: ``asr_example.ref.txt`` is a human transcript; ``sample.golden.txt`` and
``multilingual.ref.txt`` are *model outputs* asserted by those projects' tests (marked
"model ref" below), so an error against them is an upper bound on ours, not an exact one.

Run: ``python benchmarks/speech_asr.py [--threads N]``; skips cleanly when
../shared/data is absent.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from deepfolder.eval.text_metrics import char_error_rate, edit_distance
from deepfolder.ingest.asr import decode_audio_16k, ensure_whisper_model, transcribe

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / ".." / "shared" / "data" / "speech"
ESPEAK_TEXT = "Please bring the report about renewable energy before the meeting tomorrow."


def wer(ref: str, hyp: str) -> float:
    words = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
    r, h = words.findall(ref.lower()), words.findall(hyp.lower())
    return edit_distance(r, h) / max(1, len(r))


def split_channels(path: Path, out_dir: Path) -> list[Path]:
    """One 16 kHz mono WAV per channel of ``path``."""
    from faster_whisper import decode_audio

    left, right = decode_audio(str(path), sampling_rate=16000, split_stereo=True)
    outs = []
    for name, samples in (("left", left), ("right", right)):
        out = out_dir / f"{path.stem}.{name}.wav"
        with wave.open(str(out), "wb") as dst:
            dst.setnchannels(1)
            dst.setsampwidth(2)
            dst.setframerate(16000)
            dst.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        outs.append(out)
    return outs


def cases(tmp: Path) -> list[tuple[str, Path, str | None, str]]:
    """``(label, audio, reference or None, metric)``."""
    fw, fa = SPEECH / "faster-whisper", SPEECH / "funasr"
    found: list[tuple[str, Path, str | None, str]] = [
        ("funasr/asr_example.wav (zh)", fa / "asr_example.wav",
         (fa / "asr_example.ref.txt").read_text("utf-8").strip(), "CER"),
        ("funasr/asr_example.mp3 (zh)", fa / "asr_example.mp3",
         (fa / "asr_example.ref.txt").read_text("utf-8").strip(), "CER"),
        ("funasr/sample.wav (zh, model ref)", fa / "sample.wav",
         (fa / "sample.golden.txt").read_text("utf-8").strip(), "CER"),
    ]  # fmt: skip
    refs = dict(
        line.split(": ", 1)
        for line in (fw / "stereo_diarization.ref.txt").read_text("utf-8").splitlines()
        if ": " in line
    )
    left, right = split_channels(fw / "stereo_diarization.wav", tmp)
    found.append(("stereo_diarization left (en)", left, refs["LEFT"], "WER"))
    found.append(("stereo_diarization right (en)", right, refs["RIGHT"], "WER"))
    multi = dict(
        line.split(": ", 1)
        for line in (fw / "multilingual.ref.txt").read_text("utf-8").splitlines()
        if re.match(r"^(EN|DE): ", line)
    )
    found.append(
        ("multilingual.mp3 (en+de, model ref)", fw / "multilingual.mp3",
         multi["EN"] + " " + multi["DE"], "WER")
    )  # fmt: skip
    found.append(("hotwords.mp3 (en, no ref)", fw / "hotwords.mp3", None, ""))
    found.append(("funasr/mid.wav (zh, no ref)", fa / "mid.wav", None, ""))
    found.append(("funasr/long.wav (zh, no ref)", fa / "long.wav", None, ""))
    if shutil.which("espeak-ng"):
        clip = tmp / "espeak_en.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(clip), ESPEAK_TEXT], check=True)
        found.append(("espeak-ng synthetic (en)", clip, ESPEAK_TEXT, "WER"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if not SPEECH.exists():
        print(f"skipped: {SPEECH} is absent")
        return 0
    ensure_whisper_model()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = []
        warm = cases(tmp)[0][1]
        transcribe(warm, threads=args.threads)  # load the model outside the timings
        for label, path, ref, metric in cases(tmp):
            seconds = len(decode_audio_16k(path)) / 16000
            t0 = time.perf_counter()
            segments, language = transcribe(path, threads=args.threads)
            elapsed = time.perf_counter() - t0
            hyp = (" " if metric != "CER" else "").join(s.text for s in segments)
            score = ""
            if ref is not None:
                value = char_error_rate(ref, hyp) if metric == "CER" else wer(ref, hyp)
                score = f"{metric} {value:.3f}"
            rows.append((label, language, seconds, elapsed, score, hyp))
    print("| clip | lang | audio s | proc s | s/audio s | error | transcript |")
    print("|---|---|---|---|---|---|---|")
    for label, language, seconds, elapsed, score, hyp in rows:
        shown = hyp if len(hyp) <= 90 else hyp[:87] + "…"
        print(
            f"| {label} | {language} | {seconds:.1f} | {elapsed:.2f} | "
            f"{elapsed / max(seconds, 0.01):.2f} | {score} | {shown} |"
        )
    total_audio = sum(r[2] for r in rows)
    total_proc = sum(r[3] for r in rows)
    print(f"\ntotal: {total_audio:.1f} s audio in {total_proc:.1f} s = "
          f"{total_proc / total_audio:.2f} s per audio second")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
