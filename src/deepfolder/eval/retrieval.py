"""Retrieval evaluation over SQuAD / CMRC-format question sets.

Each passage becomes a document, chunked by deepfolder's normal chunker, optionally mixed
with distractor documents (JSON web-page collections, THUCNews ``label\\tcontent`` lines,
People's Daily ``词/tag`` paragraphs). A question counts as *found at rank k* when a result
at rank ≤ k comes from the question's own passage AND contains a gold answer string, so
the score does not depend on where chunks are cut. Reported per configuration: recall@k,
MRR (over the top ``max(ks)``), latency p50/p95 of one search call, and the share of
questions for which an answer-bearing chunk exists at all (the ceiling: an answer cut in
two by a chunk boundary cannot be found).

A mode may end in ``+rerank`` (``hybrid+rerank``, ``lexical+rerank``): the top results are
then reordered by the configured reranker (``retrieval.rerank``: the model-free coverage
reranker by default, or ``--reranker llm`` for the configured chat model) exactly as the
search tool does it. No package carries a multilingual cross-encoder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfolder.index import open_index
from deepfolder.index.base import Index, SearchOptions
from deepfolder.index.query import search_one
from deepfolder.index.rerank import Reranker, configured_reranker
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.settings import Settings

_PD_TAG = re.compile(r"/[a-zA-Z]+\b")


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    passage_id: str
    answers: tuple[str, ...]


class _NumberText(str):
    """A JSON number kept as its literal text (``4.90`` stays ``"4.90"``)."""

    __slots__ = ()


def _text_value(value: Any) -> str | None:
    """A text field as text: numbers (the CMRC 2018 dev set has 27 numeric answers, read
    here as their literal, e.g. ``"39764.0"``) become strings; anything else is None."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _answer_texts(raw: Any, counts: dict[str, int]) -> tuple[str, ...]:
    out: list[str] = []
    for answer in raw if isinstance(raw, list) else [raw]:
        value = answer.get("text") if isinstance(answer, dict) else answer
        text = _text_value(value)
        if text is None:
            counts["answers dropped (not text)"] += value is not None
            continue
        if isinstance(value, _NumberText) or not isinstance(value, str):
            counts["numeric answers read as text"] += 1
        if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
            out.append(text[:-2])  # 39764.0 is written 39764 in the passage
        out.append(text)
    return tuple(dict.fromkeys(out))


def load_qa(path: Path, notes: list[str] | None = None) -> tuple[list[Document], list[Question]]:
    """Passages and questions of a CMRC-style list or a SQuAD-style ``{"data": …}`` file.

    The whole set is validated here, before any indexing: numeric answers and passages
    are read as text, items without a usable passage, question or answer are skipped, and
    each kind of repair is counted in ``notes``. ``ValueError`` when nothing usable is left.
    """
    try:
        data = json.loads(
            path.read_text(encoding="utf-8-sig"), parse_float=_NumberText, parse_int=_NumberText
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"cannot read question set {path}: {exc}") from exc
    counts: Counter[str] = Counter()
    docs: list[Document] = []
    questions: list[Question] = []

    def add_passage(pid: str, title: Any, context: Any, qas: Any) -> None:
        text = _text_value(context)
        if text is None:
            counts["passages skipped (no text)"] += 1
            return
        docs.append(Document(pid, _text_value(title) or "", text))
        for j, qa in enumerate(qas if isinstance(qas, list) else []):
            if not isinstance(qa, dict):
                counts["questions skipped (not an object)"] += 1
                continue
            question = _text_value(qa.get("question", qa.get("query_text")))
            if question is None:
                counts["questions skipped (no question text)"] += 1
                continue
            qid = _text_value(qa.get("id", qa.get("query_id"))) or f"{pid}#q{j}"
            answers = _answer_texts(qa.get("answers", []), counts)
            if not answers:
                counts["questions skipped (no answer)"] += 1
                continue
            questions.append(Question(qid, question, pid, answers))

    if isinstance(data, list):  # CMRC 2018 trial layout
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                counts["passages skipped (not an object)"] += 1
                continue
            pid = f"passage/{item.get('context_id', i)}"
            add_passage(pid, item.get("title"), item.get("context_text"), item.get("qas"))
    elif isinstance(data, dict) and isinstance(data.get("data"), list):  # SQuAD / CMRC dev
        for article in data["data"]:
            if not isinstance(article, dict):
                counts["articles skipped (not an object)"] += 1
                continue
            title = article.get("title", "")
            paragraphs = article.get("paragraphs")
            for j, para in enumerate(paragraphs if isinstance(paragraphs, list) else []):
                if not isinstance(para, dict):
                    counts["passages skipped (not an object)"] += 1
                    continue
                pid = f"passage/{para.get('id', f'{title}#{j}')}"
                add_passage(pid, title, para.get("context"), para.get("qas"))
    else:
        raise ValueError(
            f"{path} is neither a CMRC list of passages nor a SQuAD {{'data': [...]}} file"
        )
    if notes is not None:
        notes.extend(f"{path.name}: {n} {what}" for what, n in sorted(counts.items()) if n)
    if not questions:
        raise ValueError(f"{path} holds no usable question (with text and an answer)")
    return docs, questions


def iter_distractors(
    path: Path, pd_group: int = 8, notes: list[str] | None = None
) -> Iterator[Document]:
    """Documents from a distractor path (a file, or every .json/.txt file in a folder).

    JSON files are read by ingest's own collection reader (``iter_articles``: streamed,
    with its depth and size budgets); a file it cannot read is skipped, with the reason
    in ``notes``.
    """
    from deepfolder.ingest.base import ExtractError
    from deepfolder.ingest.collections import BODY_KEYS, iter_articles

    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.suffix in (".json", ".txt") and child.is_file():
                yield from iter_distractors(child, pd_group, notes)
        return
    if path.suffix == ".json":
        try:
            for i, item in iter_articles(path):
                if item is None:
                    continue
                body = next((item[k] for k in BODY_KEYS if isinstance(item.get(k), str)), "")
                if body.strip():
                    title = item.get("title")
                    yield Document(f"{path}#{i}", str(title or ""), body, "article")
        except ExtractError as exc:
            if notes is not None:
                notes.append(f"distractors {path}: skipped ({exc})")
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if lines and "\t" in lines[0]:  # THUCNews: label \t content
        for i, line in enumerate(lines):
            label, _, content = line.partition("\t")
            if content.strip():
                yield Document(f"{path}#{i}", label, content, "article")
        return
    paragraphs = [_PD_TAG.sub("", ln).replace("  ", "").strip() for ln in lines]
    paragraphs = [p for p in paragraphs if p]
    for i in range(0, len(paragraphs), pd_group):
        yield Document(f"{path}#{i}", "", "\n".join(paragraphs[i : i + pd_group]), "article")


def _chunker() -> Callable[[str, int, int], list[tuple[int, int, str]]]:
    from deepfolder.ingest.chunk import chunk_text

    return chunk_text


def build_records(
    docs: Sequence[Document], chunk_chars: int, overlap: int
) -> tuple[list[Source], list[Segment]]:
    chunk_text = _chunker()
    sources: list[Source] = []
    segments: list[Segment] = []
    for doc in docs:
        sources.append(Source(doc.id, doc.id.split("#", 1)[0], doc.kind, title=doc.title))
        for n, (start, end, text) in enumerate(chunk_text(doc.text, chunk_chars, overlap)):
            loc = Locator(chunk=n + 1, char_start=start, char_end=end)
            segments.append(Segment.create(doc.id, text, loc, n))
    return sources, segments


def build_eval_index(
    index_dir: Path,
    docs: Sequence[Document],
    settings: Settings,
    *,
    progress: Callable[[str], None] | None = None,
) -> Index:
    """Open (or build) the evaluation index; an index built from the same documents and
    chunk settings is reused (a fingerprint file records what it holds)."""
    chunk_chars, overlap = settings.ingest.chunk_chars, settings.ingest.chunk_overlap
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(doc.id.encode() + b"\0" + doc.text.encode())
    fingerprint = f"{digest.hexdigest()}:{chunk_chars}:{overlap}:{settings.ingest_hash()}"
    marker = index_dir / "eval-fingerprint.txt"
    if marker.exists() and marker.read_text() == fingerprint:
        return open_index(index_dir, settings)
    if index_dir.exists() and any(index_dir.iterdir()):
        raise ValueError(f"{index_dir} holds a different index; give an empty or new --index-dir")
    index = open_index(index_dir, settings)
    sources, segments = build_records(docs, chunk_chars, overlap)
    by_source: dict[str, list[Segment]] = {}
    for seg in segments:
        by_source.setdefault(seg.source_id, []).append(seg)
    batch_sources: list[Source] = []
    batch_segments: list[Segment] = []
    done = 0
    started = time.perf_counter()
    for source in sources:
        batch_sources.append(source)
        batch_segments.extend(by_source.get(source.id, []))
        if len(batch_segments) >= 512:
            index.add(batch_sources, batch_segments)
            done += len(batch_segments)
            batch_sources, batch_segments = [], []
            if progress:
                rate = done / max(1e-9, time.perf_counter() - started)
                progress(f"indexed {done}/{len(segments)} chunks ({rate:.0f}/s)")
    index.add(batch_sources, batch_segments)
    index.close()
    marker.write_text(fingerprint)
    return open_index(index_dir, settings)


def _found_rank(results: Sequence[Evidence], question: Question) -> int | None:
    for rank, ev in enumerate(results, start=1):
        if ev.source.id == question.passage_id and any(
            a in ev.segment.text for a in question.answers
        ):
            return rank
    return None


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def split_mode(mode: str) -> tuple[str, bool]:
    """``"hybrid+rerank"`` → ``("hybrid", True)``; a clear error for anything else."""
    search_mode, plus, suffix = mode.partition("+")
    if search_mode not in ("lexical", "dense", "hybrid") or (plus and suffix != "rerank"):
        raise ValueError(
            f"unknown retrieval mode {mode!r}; use lexical, dense or hybrid, optionally "
            "followed by +rerank"
        )
    return search_mode, bool(plus)


def evaluate(
    index: Index,
    questions: Sequence[Question],
    mode: str,
    ks: Sequence[int],
    *,
    reranker: Reranker | None = None,
) -> dict[str, Any]:
    depth = max(ks)
    ranks: list[int | None] = []
    latencies: list[float] = []
    search_mode, rerank = split_mode(mode)
    use = reranker if rerank else None
    options = SearchOptions(k=depth, mode=search_mode)  # type: ignore[arg-type]
    for q in questions:
        started = time.perf_counter()
        results = search_one(index, q.text, options, use)
        latencies.append((time.perf_counter() - started) * 1000)
        ranks.append(_found_rank(results, q))
    n = max(1, len(questions))
    row: dict[str, Any] = {"mode": mode, "questions": len(questions)}
    for k in ks:
        row[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    row["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    row["p50_ms"] = statistics.median(latencies) if latencies else 0.0
    row["p95_ms"] = _percentile(latencies, 0.95)
    return row


def answerable_share(
    segments_of: Callable[[str], list[Segment]], questions: Sequence[Question]
) -> float:
    ok = 0
    for q in questions:
        if any(any(a in s.text for a in q.answers) for s in segments_of(q.passage_id)):
            ok += 1
    return ok / max(1, len(questions))


def run_retrieval_eval(
    data_path: Path,
    distractor_paths: Sequence[Path] = (),
    modes: Sequence[str] = ("lexical", "dense", "hybrid"),
    ks: Sequence[int] = (1, 5, 10, 20),
    settings: Settings | None = None,
    *,
    index_dir: Path | None = None,
    reranker: Reranker | None = None,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Build (or reuse) an index over the passages + distractors and score each mode.

    Returns one dict per mode: ``mode, questions, recall@k…, mrr, p50_ms, p95_ms,
    answerable, chunks``; a ``…+rerank`` row without a reranker, or a dense/hybrid row
    with dense retrieval off, has ``available: False`` and no numbers.
    """
    import shutil
    import tempfile

    settings = settings or Settings()
    for mode in modes:
        split_mode(mode)
    notes: list[str] = []
    docs, questions = load_qa(data_path, notes)  # validated before any expensive work
    if limit:
        questions = questions[:limit]
    seen_text: set[str] = {d.text for d in docs}
    for path in distractor_paths:
        for doc in iter_distractors(Path(path), notes=notes):
            if doc.text not in seen_text:  # the case collections repeat pages
                seen_text.add(doc.text)
                docs.append(doc)
    for note in notes:
        if progress:
            progress(note)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if index_dir is None:
        # tantivy may still write a file (its lock, a merged segment) as the index
        # closes, which would make a plain cleanup fail on a non-empty directory
        tmp = tempfile.TemporaryDirectory(prefix="deepfolder-eval-", ignore_cleanup_errors=True)
        index_dir = Path(tmp.name) / "index"
    index = build_eval_index(index_dir, docs, settings, progress=progress)
    try:
        ceiling = answerable_share(index.segments_of, questions)
        rows = []
        for mode in modes:
            if mode.endswith("+rerank") and reranker is None:
                rows.append({"mode": mode, "questions": len(questions), "available": False})
                continue
            if not mode.startswith("lexical") and not settings.retrieval.dense:
                rows.append({"mode": mode, "questions": len(questions), "available": False})
                continue
            if progress:
                progress(f"evaluating {mode} on {len(questions)} questions")
            row = evaluate(index, questions, mode, ks, reranker=reranker)
            row.update(available=True, answerable=ceiling, chunks=index.count())
            rows.append(row)
    finally:
        index.close()
        if tmp is not None:
            tmp.cleanup()
            shutil.rmtree(tmp.name, ignore_errors=True)  # what the first pass raced with
    return rows


def format_table(rows: Sequence[dict[str, Any]], ks: Sequence[int] = (1, 5, 10, 20)) -> Any:
    from rich.table import Table

    table = Table(title="Retrieval (found = own passage AND contains a gold answer)")
    table.add_column("configuration")
    for k in ks:
        table.add_column(f"R@{k}", justify="right")
    for name in ("MRR", "p50 ms", "p95 ms"):
        table.add_column(name, justify="right")
    notes = []
    for row in rows:
        if not row.get("available", True):
            table.add_row(row["mode"], *["n/a"] * (len(ks) + 3))
            if row["mode"].endswith("+rerank"):
                notes.append(
                    f"{row['mode']} n/a: retrieval.rerank is 'none' (use --reranker "
                    "coverage, or llm for the configured chat model)"
                )
            else:
                notes.append(f"{row['mode']} n/a: dense retrieval is off")
            continue
        table.add_row(
            row["mode"],
            *[f"{row[f'recall@{k}']:.3f}" for k in ks],
            f"{row['mrr']:.3f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p95_ms']:.1f}",
        )
    measured = [row for row in rows if row.get("available", True)]
    if measured:
        first = measured[0]
        notes.insert(
            0,
            f"{first['questions']} questions, {first.get('chunks', '?')} chunks; an "
            f"answer-bearing chunk exists for {first.get('answerable', 0):.1%} of questions",
        )
    table.caption = "\n".join(notes)
    return table


def eval_retrieval_command(
    argv: Sequence[str] | None = None, settings: Settings | None = None
) -> int:
    """``deepfolder eval retrieval DATA.json [--distractors PATH...]``; returns an exit code."""
    parser = argparse.ArgumentParser(prog="deepfolder eval retrieval")
    add_eval_arguments(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    return run_eval_from_args(args, settings)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``deepfolder eval retrieval`` (shared with the main CLI)."""
    parser.add_argument("data", type=Path, help="SQuAD/CMRC-format question set (JSON)")
    parser.add_argument("--distractors", type=Path, nargs="*", default=[], help="files or folders")
    parser.add_argument(
        "--modes",
        nargs="*",
        default=["lexical", "dense", "hybrid", "lexical+rerank", "hybrid+rerank"],
        help="lexical, dense or hybrid, each optionally followed by +rerank",
    )
    parser.add_argument("--ks", type=int, nargs="*", default=[1, 5, 10, 20])
    parser.add_argument("--chunk-chars", type=int, default=None)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument(
        "--weights",
        type=float,
        nargs=2,
        default=None,
        metavar=("LEXICAL", "DENSE"),
        help="RRF weights of the lexical and dense rankings",
    )
    parser.add_argument("--rrf-k", type=int, default=None, help="RRF constant")
    parser.add_argument("--index-dir", type=Path, default=None, help="keep/reuse the index here")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--reranker",
        choices=["coverage", "llm", "none"],
        default=None,
        help="reranker of the +rerank rows (default: retrieval.rerank); llm lets the "
        "configured chat model rerank the top 10, one model call per question",
    )


def run_eval_from_args(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from rich.console import Console

    settings = settings or Settings()
    ingest: dict[str, int] = {}
    if args.chunk_chars:
        ingest["chunk_chars"] = args.chunk_chars
    if args.overlap is not None:
        ingest["chunk_overlap"] = args.overlap
    if ingest:
        settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update=ingest)})
    retrieval: dict[str, float] = {}
    if args.weights:
        retrieval.update(lexical_weight=args.weights[0], dense_weight=args.weights[1])
    if args.rrf_k:
        retrieval["rrf_k"] = args.rrf_k
    if retrieval:
        settings = settings.model_copy(
            update={"retrieval": settings.retrieval.model_copy(update=retrieval)}
        )
    console = Console(stderr=False)
    if not args.data.exists():
        console.print(f"[red]question set {args.data} does not exist[/red]")
        return 2
    missing = [str(p) for p in args.distractors if not p.exists()]
    if missing:
        console.print(f"[red]distractor path(s) {', '.join(missing)} do not exist[/red]")
        return 2
    try:
        for mode in args.modes:
            split_mode(mode)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    reranker: Reranker | None
    if args.reranker == "llm":
        from deepfolder.index.rerank import LLMReranker
        from deepfolder.llm.registry import create_chat_model

        reranker = LLMReranker(create_chat_model(settings))
    else:
        choice = args.reranker or settings.retrieval.rerank
        reranker = configured_reranker(settings.retrieval.model_copy(update={"rerank": choice}))
    try:
        rows = _run_rows(args, settings, reranker, console)
    except ValueError as exc:  # an unusable question set: said before any indexing
        console.print(f"[red]{exc}[/red]")
        return 2
    console.print(format_table(rows, args.ks))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


def _run_rows(
    args: argparse.Namespace, settings: Settings, reranker: Reranker | None, console: Any
) -> list[dict[str, Any]]:
    return run_retrieval_eval(
        args.data,
        args.distractors,
        modes=args.modes,
        ks=args.ks,
        settings=settings,
        index_dir=args.index_dir,
        limit=args.limit,
        reranker=reranker,
        progress=lambda msg: console.print(f"[dim]{msg}[/dim]"),
    )
