"""Articles repeated across a case's nested collections: passages indexed, and how often
one search returns the same passage text more than once.

    python benchmarks/ingest_dedup.py [--case 002] [--queries 60] [--dense]

Queries are the titles of articles sampled (fixed seed) from the case's collections, run
with the search tool's defaults (k=8, at most 3 chunks per source, 2 sources at least).
Uses only the public ingest/index API, so the same script measures an older checkout
(``PYTHONPATH=<old>/src``). Reads ../shared/data/cases; writes only a temporary cache.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import Counter
from pathlib import Path

from deepfolder.index.base import SearchOptions
from deepfolder.ingest import ingest_folder
from deepfolder.settings import Settings

CASES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cases"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", default="002")
    parser.add_argument("--cases-dir", type=Path, default=CASES)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--dense", action="store_true", help="hybrid search (embeds chunks)")
    args = parser.parse_args(argv)
    folder = args.cases_dir / args.case
    if not folder.exists():
        print(f"skipped: {folder} is absent")
        return 0
    with tempfile.TemporaryDirectory() as cache:
        settings = Settings.model_validate({"cache_dir": cache, "retrieval": {"dense": args.dense}})
        corpus = ingest_folder(folder, settings)
        index = corpus.index
        articles = [s for s in index.sources() if s.kind == "article" and s.title]
        rng = random.Random(11)
        titles = sorted({s.title for s in rng.sample(articles, min(args.queries, len(articles)))})
        mode = "hybrid" if args.dense else "lexical"
        options = SearchOptions(k=8, mode=mode, min_docs=2, max_per_doc=3)
        with_repeats = repeated = 0
        for title in titles:
            texts = Counter(ev.segment.text for ev in index.search(title, options))
            extra = sum(n - 1 for n in texts.values())
            repeated += extra
            with_repeats += extra > 0
        print(
            f"| case {args.case} | passages | article sources | queries | "
            "queries with a repeated passage | repeated passages in top 8 |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| {mode} | {index.count()} | {len(articles)} | {len(titles)} | "
            f"{with_repeats} | {repeated} |"
        )
        corpus.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
