"""Retrieval tables (lexical / dense / hybrid / +rerank) on CMRC 2018 or English SQuAD.

    python benchmarks/retrieval_eval.py [--set cmrc|squad] [--chunk-chars 400] [--overlap 60]
        [--lexical-only] [--reranker coverage|none]

Distractors: the case collections (long_context*.json, duplicates removed), and for
CMRC also THUCNews. The +rerank rows use ``retrieval.rerank`` (auto: the English
cross-encoder for English queries when installed, coverage for Chinese ones) unless
``--reranker`` names one.
The index is kept under /tmp/deepfolder-bench/ so re-runs (other fusion weights) skip the
embedding. Skips cleanly when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout (a git worktree one level deeper also finds it)
DATA = next(
    (
        p
        for p in (REPO / ".." / "shared" / "data", REPO / ".." / ".." / "shared" / "data")
        if p.exists()
    ),
    REPO / ".." / "shared" / "data",
).resolve()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunk-chars", type=int, default=400)
    parser.add_argument("--overlap", type=int, default=60)
    parser.add_argument("--lexical-only", action="store_true")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--weights", type=float, nargs=2, default=None)
    parser.add_argument("--rrf-k", type=int, default=None)
    parser.add_argument("--modes", nargs="*", default=None)
    parser.add_argument("--set", choices=["cmrc", "squad"], default="cmrc")
    parser.add_argument("--reranker", choices=["coverage", "none"], default=None)
    args = parser.parse_args()
    qa = (
        DATA
        / "retrieval"
        / ("cmrc2018_trial.json" if args.set == "cmrc" else "squad_dev_3articles.json")
    )
    if not qa.exists():
        print(f"skipped: {qa} is absent")
        return 0
    from deepfolder.eval.retrieval import eval_retrieval_command
    from deepfolder.settings import Settings

    distractors = sorted(DATA.glob("cases/*/long_context*.json"))
    if args.set == "cmrc":
        distractors.append(DATA / "corpora" / "thucnews")
    settings = Settings.model_validate({"retrieval": {"dense": not args.lexical_only}})
    kind = "lex" if args.lexical_only else "dense"
    tag = f"{args.set}-{args.chunk_chars}-{args.overlap}-{kind}"
    argv = [
        str(qa),
        "--distractors",
        *map(str, distractors),
        "--chunk-chars",
        str(args.chunk_chars),
        "--overlap",
        str(args.overlap),
        "--index-dir",
        f"/tmp/deepfolder-bench/{tag}",
    ]
    if args.lexical_only:
        argv += ["--modes", "lexical"]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    if args.json:
        argv += ["--json", str(args.json)]
    if args.weights:
        argv += ["--weights", *map(str, args.weights)]
    if args.rrf_k:
        argv += ["--rrf-k", str(args.rrf_k)]
    if args.modes:
        argv += ["--modes", *args.modes]
    if args.reranker:
        argv += ["--reranker", args.reranker]
    return eval_retrieval_command(argv, settings=settings)


if __name__ == "__main__":
    sys.exit(main())
