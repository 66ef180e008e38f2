"""The reading-report test case of issue 11: a paper, a narrated video, background collections.

    python benchmarks/grounding_case.py build [OUT_DIR] [--data DIR]

OUT_DIR defaults to /tmp/deepfolder-grounding-case; DIR (the shared data) to
../shared/data beside the repository (pass it from a git worktree elsewhere).

Builds, outside the repository (it uses ../shared/data, which is never copied in):

- ``DPO.pdf`` — a copy of ../shared/data/papers/DPO.pdf (a copy, not a link: a link out
  of the folder may be refused by the scan);
- ``DPO_explained.mp4`` — a narrated slide video (espeak-ng English speech, slides drawn
  with PIL, ffmpeg) of the paper's key points, plus one slide of practical settings that
  the paper keeps in an appendix, so "what the video adds" has something to find;
  ``DPO_explained.truth.json`` beside the folder (not inside it) holds slides and times;
- ``long_context_<case>_<name>.json`` — the four web collections of each of the shared
  cases 002, 008 and 009, renamed so they do not collide and still match
  ``long_context*.json``: background, not the subject of the report;
- ``query.txt`` — the Chinese request (a 2000–3000 字 reading report with four sections).

The key facts a report on this folder must carry are in
``benchmarks/grounding_checklist.json``; score a run with ``benchmarks/report_quality.py``.
When ../shared/data, ffmpeg or espeak-ng is missing the script says so and exits 0
without building anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

from make_slide_video import (  # noqa: E402
    SAMPLE_RATE,
    Slide,
    make_slide_video,
    missing_tools,
    speak,
)

DEFAULT_DATA = REPO / ".." / "shared" / "data"
CASES = ("002", "008", "009")
DEFAULT_OUT = Path("/tmp/deepfolder-grounding-case")
VIDEO_NAME = "DPO_explained.mp4"

REQUEST = (
    "请基于我提供的论文及相关视频，写一篇2000至3000字的论文阅读报告，包含（1）论文基本信息；"
    "（2）核心内容摘要；（3）关键技术解析；（4）视频补充内容，标注来源。"
)

# Narration is plain English that espeak-ng says clearly and an ASR model can transcribe:
# numbers are spelled out. Slide durations are set from the spoken length (fit_slides).
SLIDES: tuple[Slide, ...] = (
    Slide(
        "Direct Preference Optimization (DPO)",
        (
            "Rafailov, Sharma, Mitchell, Ermon, Manning, Finn",
            "Stanford University · NeurIPS 2023",
        ),
        0.0,
        "This video explains Direct Preference Optimization, by Rafailov, Sharma, Mitchell, "
        "Ermon, Manning and Finn of Stanford University, presented at NeurIPS 2023.",
    ),
    Slide(
        "The problem with RLHF",
        ("Reward model + PPO: complex and unstable", "Sampling from the model while training"),
        0.0,
        "Reinforcement learning from human feedback first fits a reward model, then trains "
        "the policy with PPO. This pipeline is complex, unstable and expensive, because it "
        "samples from the language model during training.",
    ),
    Slide(
        "The DPO loss",
        (
            "Bradley-Terry preference model",
            "Binary cross-entropy: preferred vs rejected",
            "No reward model, no reinforcement learning",
        ),
        0.0,
        "DPO starts from the Bradley-Terry preference model and a change of variables. The "
        "policy is trained with a simple binary cross-entropy loss on preferred and rejected "
        "answers, with no reward model and no reinforcement learning.",
    ),
    Slide(
        "Your LM is secretly a reward model",
        ("Implicit reward = β · log(π / π_ref)", "β sets the strength of the KL constraint"),
        0.0,
        "The implicit reward is beta times the log ratio between the policy and the frozen "
        "reference model. Beta controls how far the policy may drift from the reference.",
    ),
    Slide(
        "Experiments",
        (
            "IMDb sentiment · Reddit TL;DR · Anthropic HH",
            "TL;DR win rate (GPT-4): DPO 61% vs PPO 57%",
        ),
        0.0,
        "The experiments cover IMDb sentiment, Reddit TL;DR summarization and Anthropic "
        "helpful and harmless dialogue. Judged by GPT-4, DPO wins sixty-one percent of "
        "summaries against the reference, and PPO fifty-seven percent.",
    ),
    Slide(
        "In practice",
        ("β = 0.1 · batch size 64 · RMSprop, lr 1e-6", "Two models: policy + frozen reference"),
        0.0,
        "In practice, the authors use beta equal to zero point one, a batch size of "
        "sixty-four, and the RMSprop optimizer. Only two models are needed: the policy and "
        "a frozen reference model.",
    ),
    Slide(
        "Conclusion",
        (
            "Simpler and more stable than PPO, as good or better",
            "Open: beyond 6B, out of distribution",
        ),
        0.0,
        "In short, DPO is simpler and more stable than PPO, and matches or beats it. Open "
        "questions remain: scaling beyond six billion parameters, and generalization out of "
        "distribution.",
    ),
)


def missing_inputs(data: Path) -> list[str]:
    """What the build needs and this machine lacks (empty when it can build)."""
    needed = [data / "papers" / "DPO.pdf", *(data / "cases" / case for case in CASES)]
    return [str(p) for p in needed if not p.exists()] + missing_tools()


def collection_name(case: str, original: str) -> str:
    """``long_context_sampled_32k.json`` of case 002 → ``long_context_002_sampled_32k.json``."""
    stem = original.removeprefix("long_context")
    return f"long_context_{case}{stem if stem.startswith('_') else '_' + stem}"


def fit_slides(slides: tuple[Slide, ...], scratch: Path) -> tuple[Slide, ...]:
    """Each slide lasts its narration plus 1.5 s (0.5 s before the speech, 1 s after)."""
    fitted = []
    for i, slide in enumerate(slides):
        samples = speak(slide.narration, scratch / f"probe{i}.wav")
        seconds = math.ceil(len(samples) / SAMPLE_RATE + 1.5)
        fitted.append(dataclasses.replace(slide, seconds=float(seconds)))
    return tuple(fitted)


def build(out: Path, data: Path) -> Path:
    """Build the case folder at ``out`` (which must not exist or be empty) from ``data``."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; remove it or pass another OUT_DIR")
    out.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(data / "papers" / "DPO.pdf", out / "DPO.pdf")
        # The truth file goes beside the folder: inside it would be ingested as user material.
        with tempfile.TemporaryDirectory() as scratch:
            slides = fit_slides(SLIDES, Path(scratch))
        truth = make_slide_video(out, slides, name=VIDEO_NAME)
        truth_path = out.parent / f"{out.name}.video-truth.json"
        truth_path.write_text(json.dumps(truth.to_dict(), ensure_ascii=False, indent=2) + "\n")
        for case in CASES:
            for src in sorted((data / "cases" / case).glob("long_context*.json")):
                shutil.copyfile(src, out / collection_name(case, src.name))
        (out / "query.txt").write_text(REQUEST + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(out)  # a half-built case would be scored as if it were complete
        raise
    print(f"built {out}: {len(list(out.iterdir()))} files, video {truth.duration:.0f} s")
    print(f"video truth (slides, narration, times): {truth_path}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Build the grounding reading-report case.")
    parser.add_argument("command", choices=["build"])
    parser.add_argument("out", type=Path, nargs="?", default=DEFAULT_OUT)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data")
    args = parser.parse_args(argv)
    missing = missing_inputs(args.data)
    if missing:
        print(f"skipped: cannot build the grounding case, missing: {', '.join(missing)}")
        return 0
    build(args.out, args.data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
