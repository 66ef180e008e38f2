"""Chinese queries about an English paper: recall of the right pages of DPO.pdf.

    python benchmarks/crosslingual_eval.py [--model-translations] [--json OUT]

The folder is ../shared/data/papers/DPO.pdf plus the Chinese web-page collections of
case 002 (distractors), copied to a scratch folder and ingested the normal way (its own
cache under /tmp/deepfolder-bench/). The 22 hand-written Chinese queries and their gold
pages are in benchmarks/data/dpo_zh_queries.json. Found at rank k = a result at rank
<= k is a chunk of DPO.pdf on one of the query's gold pages. Each configuration searches
through ``index.query.search_many`` as the search tool does (hybrid, coverage reranker),
with k = 10 and no diversity limits (DPO.pdf is one source; the tool's per-source cap
would hide its pages behind the cap, not behind the ranking).

Configurations: today's hybrid; the dense side's cross-script hits fused with a raised
weight; the hand translation added (the ceiling of query translation); the embedded
model's translations added (``--model-translations``: loads the local model, one call
for all queries). Skips cleanly when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
QUERIES = REPO / "benchmarks" / "data" / "dpo_zh_queries.json"
WORK = Path("/tmp/deepfolder-bench/xlingual-dpo")
KS = (1, 3, 5, 10)


def found_rank(results: Sequence[Any], pages: Sequence[int]) -> int | None:
    for rank, ev in enumerate(results, start=1):
        if ev.source.path.endswith("DPO.pdf") and ev.segment.locator.page in pages:
            return rank
    return None


def score_row(name: str, ranks: list[int | None], latencies: list[float]) -> dict[str, Any]:
    n = max(1, len(ranks))
    row: dict[str, Any] = {"configuration": name, "queries": len(ranks)}
    for k in KS:
        row[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    row["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    row["p50_ms"] = statistics.median(latencies) if latencies else 0.0
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-translations", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--weights", type=float, nargs="*", default=[0.5, 1.0, 2.0])
    parser.add_argument("--only-model", action="store_true", help="only the model rows")
    parser.add_argument("--folder", type=Path, default=WORK / "folder", help="scratch folder")
    args = parser.parse_args()
    paper = DATA / "papers" / "DPO.pdf"
    collections = sorted((DATA / "cases" / "002").glob("long_context*.json"))
    if not paper.exists() or not collections:
        print(f"skipped: {paper} or the case 002 collections are absent")
        return 0
    from deepfolder.index.base import SearchOptions
    from deepfolder.index.rerank import configured_reranker
    from deepfolder.ingest.pipeline import ingest_folder
    from deepfolder.settings import Settings

    folder: Path = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    for src in [paper, *collections]:
        if not (folder / src.name).exists():
            shutil.copy2(src, folder / src.name)
    os.environ.setdefault("DEEPFOLDER_CACHE", str(WORK / "cache"))
    settings = Settings()
    started = time.perf_counter()
    corpus = ingest_folder(folder, settings)
    print(f"ingested {corpus.index.count()} chunks in {time.perf_counter() - started:.1f} s")
    spec = json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]
    reranker = configured_reranker(settings.retrieval)
    options = SearchOptions(k=max(KS), mode="hybrid", min_docs=1, max_per_doc=0)

    def run(name: str, search: Callable[[dict[str, Any]], list[Any]]) -> dict[str, Any]:
        ranks: list[int | None] = []
        latencies: list[float] = []
        for item in spec:
            t0 = time.perf_counter()
            results = search(item)
            latencies.append((time.perf_counter() - t0) * 1000)
            ranks.append(found_rank(results, item["pages"]))
        row = score_row(name, ranks, latencies)
        row["ranks"] = ranks
        print(_line(row), flush=True)
        return row

    index = corpus.index
    rows = [] if args.only_model else _hand_rows(run, index, options, reranker, args.weights)
    if args.model_translations:
        rows.extend(_model_rows(spec, run, index, options, reranker, settings))
    corpus.close()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def _hand_rows(
    run: Callable[[str, Callable[[dict[str, Any]], list[Any]]], dict[str, Any]],
    index: Any,
    options: Any,
    reranker: Any,
    weights: Sequence[float],
) -> list[dict[str, Any]]:
    """Today's search, the cross-script dense boost, and the hand translations."""
    from deepfolder.index.query import search_many

    rows = [
        run("lexical", lambda q: search_many(index, [q["query"]], _mode(options, "lexical"))),
        run("dense", lambda q: search_many(index, [q["query"]], _mode(options, "dense"))),
        run(
            "hybrid+rerank (today)",
            lambda q: search_many(index, [q["query"]], options, reranker=reranker),
        ),
    ]
    for w in weights:
        rows.append(
            run(
                f"+ cross-script dense hits, weight {w:g}",
                lambda q, w=w: search_many(
                    index, [q["query"]], options, reranker=reranker, cross_script_weight=w
                ),
            )
        )
    rows.append(
        run(
            "English hand translation alone",
            lambda q: search_many(index, [q["translation"]], options, reranker=reranker),
        )
    )
    for tw, cw in [(1.0, 0.0), (2.0, 0.0), (1.0, 1.0), (2.0, 1.0)]:
        name = f"+ hand translation, weight {tw:g}" + (
            f", cross-script weight {cw:g}" if cw else ""
        )
        rows.append(
            run(
                name,
                lambda q, tw=tw, cw=cw: search_many(
                    index,
                    [q["query"]],
                    options,
                    reranker=reranker,
                    translations=[q["translation"]],
                    translation_weight=tw,
                    cross_script_weight=cw,
                ),
            )
        )
    return rows


def _model_rows(
    spec: list[dict[str, Any]],
    run: Callable[[str, Callable[[dict[str, Any]], list[Any]]], dict[str, Any]],
    index: Any,
    options: Any,
    reranker: Any,
    settings: Any,
) -> list[dict[str, Any]]:
    """Rows with the configured model's (default: the embedded one's) translations."""
    from deepfolder.index.query import search_many
    from deepfolder.index.translate import translate_queries
    from deepfolder.llm.registry import create_chat_model

    model = create_chat_model(settings)
    translated: dict[str, list[str]] = {}
    started = time.perf_counter()
    for item in spec:  # one call per query, as the pipeline makes per section need
        translated[item["query"]] = translate_queries(model, [item["query"]], "en")
        print(f"  {item['query']} -> {translated[item['query']]}", flush=True)
    seconds = (time.perf_counter() - started) / len(spec)
    print(f"model {model.name}: {seconds:.1f} s per translation call")
    row = run(
        f"+ {model.name} translation",
        lambda q: search_many(
            index, [q["query"]], options, reranker=reranker, translations=translated[q["query"]]
        ),
    )
    row["translations"] = translated
    row["seconds_per_call"] = seconds
    return [row]


def _mode(options: Any, mode: str) -> Any:
    from dataclasses import replace

    return replace(options, mode=mode)


def _line(row: dict[str, Any]) -> str:
    recalls = " ".join(f"R@{k} {row[f'recall@{k}']:.3f}" for k in KS)
    return f"{row['configuration']:42s} {recalls} MRR {row['mrr']:.3f} p50 {row['p50_ms']:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
