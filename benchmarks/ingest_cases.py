"""Ingest time for each real case folder, cold (empty cache) and warm (unchanged re-run).

    python benchmarks/ingest_cases.py [--no-dense] [--cases 002 008 009] [--workers N]

Reads ../shared/data/cases (skips cleanly when absent); writes nothing outside a
temporary cache directory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from deepfolder.ingest import ingest_folder
from deepfolder.settings import Settings

CASES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cases"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-dense", action="store_true", help="lexical index only")
    parser.add_argument("--cases", nargs="*", default=["002", "008", "009"])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    if not CASES.exists():
        print(f"skipped: {CASES} is absent")
        return 0
    print("| case | files | failed | segments | cold s (extract / index) | warm s |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        folder = CASES / case
        with tempfile.TemporaryDirectory() as cache:
            settings = Settings.model_validate(
                {
                    "cache_dir": cache,
                    "retrieval": {"dense": not args.no_dense},
                    "ingest": {"workers": args.workers},
                }
            )
            t0 = time.perf_counter()
            corpus = ingest_folder(folder, settings)
            cold = time.perf_counter() - t0
            segments = corpus.index.count()
            report = corpus.report
            corpus.close()
            t0 = time.perf_counter()
            again = ingest_folder(folder, settings)
            warm = time.perf_counter() - t0
            cached = sum(f.status == "cached" for f in again.report.files)
            again.close()
            timings = report.timings
            print(
                f"| {case} | {len(report.files)} | {len(report.failures)} | {segments} | "
                f"{cold:.1f} ({timings.get('extract', 0):.1f} / {timings.get('index', 0):.1f}) "
                f"| {warm:.2f} ({cached} cached) |",
                flush=True,
            )
            for failure in report.failures:
                print(f"  failed: {failure.path}: {failure.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
