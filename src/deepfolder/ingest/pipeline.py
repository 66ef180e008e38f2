"""``ingest_folder``: scan → extract (+ chunk) → index, incrementally, with a report.

The index directory is
``<cache>/index/<folder name>-<sha of the absolute folder path>[:8]-<ingest_hash>``, so
each folder and each set of ingest settings gets its own index. Inside it, ``manifest.json``
says which file (path + sha256) produced which sources; a re-run

- skips files whose path and sha256 are unchanged and whose sources are in the index,
- re-extracts only changed or new files (or refills them from ``extract/`` when the
  extraction of that exact content is cached),
- removes the sources of files that disappeared, changed or now fail.

Heavy files (PDF, media, archives) are extracted in worker processes when there are
several of them and ``settings.ingest.workers`` allows; everything else runs in-process.
The workers share the cores: each gets ``cores // workers`` threads (at least 1) for its
OCR and ASR engines, through ``$DEEPFOLDER_THREADS`` set in the worker initializer.
Extractors get ``settings.cache_path()`` as ``ExtractContext.cache_dir`` for the models
they join at first use (whisper), so a configured ``cache_dir`` holds them too.
A file that cannot be read becomes ``FileReport(status="failed", reason=...)``; a symlink
out of the folder becomes ``status="skipped"``.

Crash safety: a file enters ``manifest.json`` (is "ingested") only at a checkpoint, after
every store of the index has committed its passages (``index.flush()``), so a killed
ingest leaves each file either findable or absent from the manifest and read again by
the next run. The next run also asks the index to ``repair()`` itself (the embedded one
rebuilds its lexical part when it disagrees with its record store). One ingest of a
folder runs at a time (``lock.py``). Articles that several collections share are
indexed once (``dedup.py``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfolder.ingest.base import FileReport, IngestReport
from deepfolder.ingest.cache import (
    extract_cache_path,
    load_extraction,
    load_manifest,
    save_extraction,
    save_manifest,
)
from deepfolder.ingest.dedup import ArticleRegistry
from deepfolder.ingest.lock import ingest_lock
from deepfolder.ingest.registry import HEAVY_KINDS
from deepfolder.ingest.scan import DATA_KINDS, ScannedFile, scan_folder
from deepfolder.ingest.summary import describe_outcome, folder_summary
from deepfolder.ingest.worker import (
    FileJob,
    FileOutcome,
    available_cores,
    init_worker_process,
    run_job,
    threads_per_worker,
)
from deepfolder.settings import Settings

if TYPE_CHECKING:
    from deepfolder.index.base import Index

Progress = Callable[[str, int, int], None]
IndexFactory = Callable[[Path, Settings], "Index"]


@dataclass
class Corpus:
    """An ingested folder: its index, what happened, and what the agent is told about it."""

    folder: Path
    index: Index
    report: IngestReport
    index_dir: Path
    data_files: list[str] = field(default_factory=list)
    """Relative paths of csv/tsv/xlsx/xls/json data files, for the analysis tool."""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-file description (kind, pages, slides, rows, articles, titles) by path."""

    def summary(self, max_chars: int = 2000) -> str:
        """A compact description of the folder for the model's prompt."""
        return folder_summary(self.folder.name, self.files, self.report, max_chars)

    def close(self) -> None:
        self.index.close()


def index_dir_for(folder: Path, settings: Settings) -> Path:
    folder = folder.resolve()
    path_hash = hashlib.sha256(str(folder).encode("utf-8")).hexdigest()[:8]
    name = f"{folder.name or 'root'}-{path_hash}-{settings.ingest_hash()}"
    return settings.cache_path() / "index" / name


def _default_index(path: Path, settings: Settings) -> Index:
    from deepfolder.index import open_index

    return open_index(path, settings)


def _workers(settings: Settings) -> int:
    return max(1, settings.ingest.workers or available_cores())


def worker_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of extraction processes sharing the cores: each caps its OCR/ASR threads at
    ``threads_per_worker(processes)`` (set as ``$DEEPFOLDER_THREADS`` before any job)."""
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context(method),
        initializer=init_worker_process,
        initargs=(threads_per_worker(processes),),
    )


def _run_jobs(jobs: list[FileJob], workers: int) -> Iterator[FileOutcome]:
    """Outcomes as they finish: heavy files in worker processes when worth it."""
    heavy = [j for j in jobs if j.kind in HEAVY_KINDS or j.size > 20 * 2**20]
    if workers < 2 or len(heavy) < 2:
        yield from (run_job(job) for job in jobs)
        return
    light = [j for j in jobs if j not in heavy]
    with worker_pool(min(workers, len(heavy))) as pool:
        futures = {pool.submit(run_job, job): job for job in heavy}
        yield from (run_job(job) for job in light)
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # a worker killed (out of memory, segfault in a C lib)
                job = futures[future]
                yield FileOutcome(job.rel_path, False, f"the worker reading it died: {exc}")


def _failed(file: ScannedFile, reason: str, seconds: float = 0.0) -> FileReport:
    return FileReport(file.rel_path, file.kind, "failed", reason, 0, seconds, file.sha256)


def _precheck(file: ScannedFile, settings: Settings) -> str:
    """Why a file is not worth extracting, or ''."""
    if file.kind == "unsupported":
        return file.note or "unsupported file type"
    if file.size == 0:
        return "file is empty (0 bytes)"
    limit = settings.ingest.max_file_mb
    if file.size > limit * 2**20:
        return (
            f"file is {file.size / 2**20:.0f} MB, larger than ingest.max_file_mb = {limit:g}; "
            "raise the limit to read it"
        )
    return ""


def ingest_folder(
    folder: Path,
    settings: Settings,
    *,
    progress: Progress | None = None,
    index_factory: IndexFactory | None = None,
    notice: Callable[[str], None] | None = None,
) -> Corpus:
    """Index every file of ``folder`` (incrementally) and return the corpus.

    ``index_factory(path, settings)`` opens the index (default:
    ``deepfolder.index.open_index``); tests pass an in-memory one. ``notice`` gets
    one-line messages for the user (default: standard error), such as waiting for another
    ingest of the same folder.
    """
    folder = Path(folder).resolve()
    index_dir = index_dir_for(folder, settings)
    with ingest_lock(index_dir, folder, notice or _to_stderr):
        return _ingest_locked(folder, index_dir, settings, progress, index_factory)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _job(file: ScannedFile, index_dir: Path, settings: Settings) -> FileJob:
    return FileJob(
        str(file.path),
        file.rel_path,
        file.kind,
        file.sha256,
        file.size,
        str(index_dir / "work" / file.sha256[:16]),
        settings.ingest.model_dump(mode="json"),
        str(settings.cache_path()),
    )


def _text(value: str) -> str:
    """Text safe for JSON/SQLite: a message may quote a name that is not valid UTF-8."""
    return value.encode("utf-8", errors="replace").decode("utf-8")


def _ingest_locked(
    folder: Path,
    index_dir: Path,
    settings: Settings,
    progress: Progress | None,
    index_factory: IndexFactory | None,
) -> Corpus:
    notify = progress or (lambda phase, done, total: None)
    timings: dict[str, float] = {}
    report = IngestReport(folder=str(folder), index_dir=str(index_dir))

    started = time.perf_counter()
    notify("scan", 0, 0)
    scanned = scan_folder(folder, follow_external_symlinks=settings.ingest.follow_external_symlinks)
    notify("scan", len(scanned), len(scanned))
    timings["scan"] = time.perf_counter() - started

    index = (index_factory or _default_index)(index_dir, settings)
    repair = getattr(index, "repair", None)
    repaired = repair() if callable(repair) else ""
    if repaired:
        report.notes.append(repaired)
    manifest = load_manifest(index_dir)
    registry = ArticleRegistry(manifest)
    _forget_stale(index, manifest, registry, [f for f in scanned if not f.skipped])

    reports: dict[str, FileReport] = {}
    jobs: list[FileJob] = []
    refills: list[tuple[ScannedFile, FileOutcome]] = []
    by_rel = {f.rel_path: f for f in scanned}
    for file in scanned:
        entry = manifest.get(file.rel_path)
        if file.skipped:
            reports[file.rel_path] = FileReport(
                file.rel_path, file.kind, "skipped", _text(file.skipped)
            )
        elif entry:
            reports[file.rel_path] = FileReport(
                file.rel_path,
                file.kind,
                "cached",
                "; ".join(entry.get("warnings", [])),
                int(entry.get("segments", 0)),
                0.0,
                file.sha256,
            )
        elif reason := _precheck(file, settings):
            reports[file.rel_path] = _failed(file, reason)
        elif (
            cached := load_extraction(extract_cache_path(index_dir, file.rel_path, file.sha256))
        ) is not None:
            refills.append((file, cached))
        else:
            jobs.append(_job(file, index_dir, settings))

    extract_started = time.perf_counter()
    index_seconds = 0.0
    total = len(jobs) + len(refills)
    done = 0
    unsaved = 0
    last_save = time.monotonic()
    notify("extract", 0, total)

    def store(file: ScannedFile, outcome: FileOutcome, status: str) -> None:
        nonlocal index_seconds
        if not outcome.ok:
            reports[file.rel_path] = _failed(file, _text(outcome.reason), outcome.seconds)
            return
        t0 = time.perf_counter()
        kept = registry.dedupe(outcome.sources, outcome.segments, index)
        if kept.others:
            index.add(kept.others, [])
        index.add(kept.sources, kept.segments)
        index_seconds += time.perf_counter() - t0
        warnings = [_text(w) for w in outcome.warnings]
        if file.name_note:
            warnings.append(file.name_note)
        if kept.duplicates:
            warnings.append(
                f"{len(kept.duplicates)} article(s) already indexed from another copy; "
                "indexed once, every location kept"
            )
        manifest[file.rel_path] = {
            "sha256": file.sha256,
            "kind": file.kind,
            "size": file.size,
            "source_ids": [s.id for s in kept.sources],
            "segments": len(kept.segments),
            "warnings": warnings,
            "models": outcome.models,
            "describe": describe_outcome(file.kind, outcome),
            "articles": kept.articles,
            "duplicates": kept.duplicates,
        }
        reports[file.rel_path] = FileReport(
            file.rel_path,
            file.kind,
            status,
            "; ".join(warnings),
            len(kept.segments),
            outcome.seconds,
            file.sha256,
        )

    def checkpoint() -> None:
        """Commit every store, then mark the files stored so far as ingested: a killed
        ingest leaves each file either in the manifest and searchable, or not in the
        manifest (and indexed again by the next run)."""
        nonlocal index_seconds, unsaved, last_save
        t0 = time.perf_counter()
        _flush(index)
        index_seconds += time.perf_counter() - t0
        save_manifest(index_dir, manifest)
        unsaved, last_save = 0, time.monotonic()

    def advance() -> None:
        nonlocal done, unsaved
        done += 1
        unsaved += 1
        notify("extract", done, total)
        if unsaved >= CHECKPOINT_FILES or time.monotonic() - last_save > CHECKPOINT_SECONDS:
            checkpoint()  # progress survives an interruption

    for file, outcome in refills:
        store(file, outcome, "cached")
        advance()
    for outcome in _run_jobs(jobs, _workers(settings)):
        file = by_rel[outcome.rel_path]
        if outcome.ok:
            save_extraction(extract_cache_path(index_dir, file.rel_path, file.sha256), outcome)
        store(file, outcome, "indexed")
        advance()

    notify("index", 0, 1)
    checkpoint()
    finish = getattr(index, "finish_writes", None)
    if callable(finish):
        finish()  # let go of the lexical index's writer before the lock
    notify("index", 1, 1)
    timings["extract"] = time.perf_counter() - extract_started - index_seconds
    timings["index"] = index_seconds

    report.files = [reports[f.rel_path] for f in scanned]
    for entry in manifest.values():
        report.models.update(entry.get("models", {}))
    timings["total"] = time.perf_counter() - started
    report.timings = timings
    (index_dir / "ingest_report.json").write_text(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    data_files = [
        f.rel_path
        for f in scanned
        if f.kind in DATA_KINDS and reports[f.rel_path].status not in ("failed", "skipped")
    ]
    files = {rel: {"kind": e["kind"], **e.get("describe", {})} for rel, e in manifest.items()}
    return Corpus(folder, index, report, index_dir, data_files, files)


def _forget_stale(
    index: Index,
    manifest: dict[str, dict[str, Any]],
    registry: ArticleRegistry,
    readable: list[ScannedFile],
) -> None:
    """Take out of the index and the manifest every file that is gone, changed or lost
    its sources, then (until none is left) every file whose articles deferred to a first
    copy that just left: they are indexed again, and one of them holds the first copy."""
    removed: set[str] = set()

    def drop(rel: str) -> None:
        entry = manifest.pop(rel)
        ids = entry.get("source_ids", [])
        index.remove_sources(ids)
        registry.forget(entry, index)
        removed.update(ids)

    current = {f.rel_path: f for f in readable}
    for rel, entry in list(manifest.items()):
        file = current.get(rel)
        if file is None or entry.get("sha256") != file.sha256 or not _in_index(index, entry):
            drop(rel)
    while orphaned := [
        rel
        for rel, entry in manifest.items()
        if removed.intersection(entry.get("duplicates", {}).values())
    ]:
        for rel in orphaned:
            drop(rel)


CHECKPOINT_FILES = 100
CHECKPOINT_SECONDS = 20.0


def _flush(index: Index) -> None:
    flush = getattr(index, "flush", None)
    if callable(flush):
        flush()


def _in_index(index: Index, entry: dict[str, Any]) -> bool:
    ids = entry.get("source_ids", [])
    if not ids:
        return True
    return index.source(ids[0]) is not None and index.source(ids[-1]) is not None
