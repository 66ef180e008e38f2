"""What the agent's search returns on the three real cases' web-page collections.

    python benchmarks/retrieval_examples.py [--rerank coverage|none]

Uses the index that ``benchmarks/retrieval_eval.py`` builds (it holds the cases'
collections as distractors) and searches the way the ``search`` tool does: hybrid,
k=3, at least 2 sources, at most 1 chunk per source, restricted to the case's own
collection files, reranked by ``retrieval.rerank``. Prints 70 characters of each hit.
Skips cleanly when the index or ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

INDEX = Path("/tmp/deepfolder-bench/cmrc-400-60-dense")
QUERIES = {
    "002": ["避风港原则 直播带货 平台责任", "notice and takedown safe harbor live streaming"],
    "008": ["新冠疫情 死亡人数 全球", "COVID-19 confirmed cases by country"],
    "009": ["学生 压力 影响因素", "student stress factors sleep"],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rerank", choices=["coverage", "none"], default="coverage")
    args = parser.parse_args()
    if not (INDEX / "eval-fingerprint.txt").exists():
        print(f"skipped: {INDEX} is absent; run benchmarks/retrieval_eval.py first")
        return 0
    from deepfolder.index import open_index
    from deepfolder.index.base import SearchFilter, SearchOptions
    from deepfolder.index.query import search_many
    from deepfolder.index.rerank import configured_reranker
    from deepfolder.settings import Settings

    settings = Settings.model_validate({"retrieval": {"rerank": args.rerank}})
    index = open_index(INDEX, settings)
    reranker = configured_reranker(settings.retrieval)
    by_case: dict[str, set[str]] = {}
    for source in index.sources():
        if "/cases/" in source.id:
            case = source.id.split("/cases/")[1].split("/")[0]
            by_case.setdefault(case, set()).add(source.path)
    for case, queries in QUERIES.items():
        flt = SearchFilter(collections=tuple(sorted(by_case.get(case, ()))))
        options = SearchOptions(k=3, mode="hybrid", filter=flt, min_docs=2, max_per_doc=1)
        for query in queries:
            print(f"## case {case} — {query}")
            for ev in search_many(index, [query], options, reranker=reranker):
                name = ev.source.path.split("/")[-1]
                text = ev.segment.text[:70].replace("\n", " ")
                print(f"- {ev.id} [{name} #{ev.source.title[:30]}] {text}")
    index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
