"""Index scale benchmark: ~100k chunks from ../shared/data/corpora + the case collections.

    python benchmarks/retrieval_scale.py [--target 100000] [--embed-sample 1500]

What is measured and what is not (printed again at the end):

- The unique text (People's Daily Jan 1998 in groups of 8 paragraphs, THUCNews articles,
  the case collections without duplicates) is chunked with the normal chunker (400/60) and
  replicated under distinct source ids until ``--target`` chunks exist.
- Lexical index: built for real at full size (tokenise, tantivy, SQLite).
- Dense: embedding 100k chunks with the packaged MUSE model takes ~30–45 min on these
  busy cores, so the model's throughput is measured on ``--embed-sample`` real chunks and
  the full-size embedding time is extrapolated; the vectors written for the other chunks
  are pseudo-random unit vectors (search latency of an exact scan does not depend on the
  values). Query embeddings are real.
- Reopen time, disk size, query p50/p95 per mode (real CMRC questions), peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data"
WORK = Path("/tmp/deepfolder-bench/scale")


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, default=100_000)
    parser.add_argument("--embed-sample", type=int, default=1500)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument(
        "--real-unique",
        action="store_true",
        help="instead: index the unique chunks (no copies) with real embeddings, timed",
    )
    args = parser.parse_args()
    if not (DATA / "corpora").exists():
        print(f"skipped: {DATA / 'corpora'} is absent")
        return 0

    from deepfolder.eval.retrieval import build_records, iter_distractors, load_qa, split_mode
    from deepfolder.index.base import SearchOptions
    from deepfolder.index.embed import Embedder
    from deepfolder.index.embedded import EmbeddedIndex
    from deepfolder.index.query import search_one
    from deepfolder.index.rerank import CoverageReranker
    from deepfolder.records import Segment, Source

    class SampledEmbedder(Embedder):
        """Real vectors for queries; pseudo-random unit vectors for indexed chunks."""

        synthetic = True

        def embed(self, texts: list[str]) -> np.ndarray:
            if not self.synthetic:
                return super().embed(texts)
            out = np.empty((len(texts), self.dim), np.float32)
            for i, text in enumerate(texts):
                seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())
                v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
                out[i] = v / np.linalg.norm(v)
            return out

    docs = []
    seen: set[str] = set()
    paths = [DATA / "corpora", *sorted(DATA.glob("cases/*/long_context*.json"))]
    for path in paths:
        for doc in iter_distractors(path):
            if doc.text not in seen:
                seen.add(doc.text)
                docs.append(doc)
    sources, segments = build_records(docs, 400, 60)
    unique_chunks = len(segments)
    print(f"{len(docs)} unique documents, {unique_chunks} unique chunks")

    report: dict[str, object] = {"unique_documents": len(docs), "unique_chunks": unique_chunks}
    if args.real_unique:
        path = WORK / "real-unique"
        shutil.rmtree(path, ignore_errors=True)
        started = time.perf_counter()
        index = EmbeddedIndex(path, dense=True)
        by_src: dict[str, list[Segment]] = {}
        for seg in segments:
            by_src.setdefault(seg.source_id, []).append(seg)
        for start in range(0, len(sources), 200):
            part = sources[start : start + 200]
            index.add(part, [s for src in part for s in by_src.get(src.id, [])])
        index.close()
        report["real_unique"] = {
            "index_s_with_embedding": round(time.perf_counter() - started, 1),
            "disk_mb": round(_disk(path) / 1e6, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(json.dumps(report, indent=2))
        return 0

    # 1. embedding throughput on a real sample
    real = Embedder()
    # A random sample: the first chunks are short People's Daily ones and embed ~3x faster.
    picks = np.random.default_rng(0).permutation(len(segments))[: args.embed_sample]
    sample = [segments[int(i)].text for i in picks]
    real.embed(sample[:8])  # load the model outside the timing
    started = time.perf_counter()
    real.embed(sample)
    embed_rate = len(sample) / (time.perf_counter() - started)
    report["embed_chunks_per_s"] = round(embed_rate, 1)
    print(f"embedding: {embed_rate:.1f} chunks/s on {len(sample)} real chunks")

    # 2. replicate to the target size
    all_sources: list[Source] = []
    all_segments: list[Segment] = []
    copy = 0
    while len(all_segments) < args.target:
        prefix = f"copy{copy}/"
        by_id = {}
        for src in sources:
            by_id[src.id] = Source(prefix + src.id, prefix + src.path, src.kind, title=src.title)
        all_sources.extend(by_id.values())
        for seg in segments:
            if len(all_segments) >= args.target:
                break
            all_segments.append(
                Segment.create(prefix + seg.source_id, seg.text, seg.locator, seg.seq)
            )
        copy += 1
    used = {s.source_id for s in all_segments}
    all_sources = [s for s in all_sources if s.id in used]
    report["chunks"] = len(all_segments)
    report["copies"] = copy

    _, questions = load_qa(DATA / "retrieval" / "cmrc2018_trial.json")
    queries = [q.text for q in questions[: args.queries // 2]] + [
        "economic growth in 1998",
        "basketball playoffs injury",
        "电商直播 监管",
        "COVID-19 deaths by country",
        "学生 压力 因素",
        "避风港原则 网络平台责任",
    ] * max(1, args.queries // 12)

    for dense in (False, True):
        label = "dense" if dense else "lexical"
        path = WORK / label
        shutil.rmtree(path, ignore_errors=True)
        emb = SampledEmbedder() if dense else None
        started = time.perf_counter()
        index = EmbeddedIndex(path, dense=dense, embedder=emb)
        by_source: dict[str, list[Segment]] = {}
        for seg in all_segments:
            by_source.setdefault(seg.source_id, []).append(seg)
        batch_src: list[Source] = []
        batch_seg: list[Segment] = []
        for src in all_sources:
            batch_src.append(src)
            batch_seg.extend(by_source[src.id])
            if len(batch_seg) >= 2000:
                index.add(batch_src, batch_seg)
                batch_src, batch_seg = [], []
        index.add(batch_src, batch_seg)
        index.close()
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        index = EmbeddedIndex(path, dense=dense, embedder=emb)
        index.count()
        reopen_s = time.perf_counter() - started
        if emb is not None:
            emb.synthetic = False
        reranker = CoverageReranker()
        modes = ("lexical", "dense", "hybrid", "hybrid+rerank") if dense else ("lexical",)
        latencies: dict[str, dict[str, float]] = {}
        index.search("预热", SearchOptions(k=8, mode="hybrid" if dense else "lexical"))
        for mode in modes:
            search_mode, rerank = split_mode(mode)
            options = SearchOptions(k=8, mode=search_mode, min_docs=2, max_per_doc=3)  # type: ignore[arg-type]
            times = []
            for q in queries:
                t = time.perf_counter()
                search_one(index, q, options, reranker if rerank else None)
                times.append((time.perf_counter() - t) * 1000)
            latencies[mode] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(_pct(times, 0.95), 1),
            }
        index.close()
        entry = {
            "build_s_without_embedding": round(build_s, 1),
            "reopen_s": round(reopen_s, 3),
            "disk_mb": round(_disk(path) / 1e6, 1),
            "query": latencies,
        }
        if dense:
            entry["embedding_s_extrapolated"] = round(len(all_segments) / embed_rate, 0)
        report[label] = entry
        print(label, json.dumps(entry))
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    out = WORK / "report.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(
        "NOTE: dense vectors of indexed chunks are synthetic (random unit vectors); the "
        "embedding time for the full index is extrapolated from the measured throughput."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
