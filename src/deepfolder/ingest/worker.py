"""Extract and chunk one file: the unit of work a worker process runs.

Everything here is plain data in and out (picklable), so the same function runs
in-process or in a ``ProcessPoolExecutor``. Every failure (missing package, corrupt or
encrypted file, undecodable text, an extractor's bug) becomes ``FileOutcome.reason``;
nothing escapes to stop the ingest of the other files.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.ingest.base import ExtractContext, ExtractError
from deepfolder.ingest.chunk import chunk_segments
from deepfolder.records import Segment, Source
from deepfolder.settings import IngestSettings


@dataclass(slots=True)
class FileJob:
    path: str
    rel_path: str
    kind: str
    sha256: str
    size: int
    work_dir: str
    settings: dict[str, Any]
    cache_dir: str | None = None
    """``settings.cache_path()``: where extractors cache joined models."""


@dataclass(slots=True)
class FileOutcome:
    rel_path: str
    ok: bool
    reason: str = ""
    sources: list[Source] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


THREAD_VARS = ("DEEPFOLDER_THREADS", "OMP_NUM_THREADS")
"""Set in each worker process: ``DEEPFOLDER_THREADS`` is read by the OCR (onnxruntime)
and ASR (CTranslate2) engines; ``OMP_NUM_THREADS`` caps OpenMP pools of other libraries
loaded in the worker."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, budget: int | None = None) -> int:
    """Threads each of ``workers`` extraction processes may use: ``budget // workers``.

    ``budget`` defaults to ``$DEEPFOLDER_THREADS`` when set (the user's total), else the
    available cores; so 2 workers on 2 cores get 1 thread each instead of the 2-4 that
    OCR and ASR take by default, which oversubscribed the machine (4+ busy threads on 2
    cores, each run slower than alone).
    """
    if budget is None:
        env = os.environ.get("DEEPFOLDER_THREADS", "")
        budget = int(env) if env.isdigit() and int(env) > 0 else available_cores()
    return max(1, budget // max(1, workers))


def init_worker_process(threads: int) -> None:
    """``ProcessPoolExecutor`` initializer: cap the threads of the engines in this worker.

    Runs before any job, so the OCR engine and the whisper model (built once per process
    on first use) are created with ``threads`` threads.
    """
    for name in THREAD_VARS:
        os.environ[name] = str(threads)


def _readable_path(path: Path, rel_path: str, work_dir: Path) -> Path:
    """``path``, or a link to it under the safe name ``rel_path`` gave it when its own name
    is not valid UTF-8: extractors put ``path.name`` into titles and messages, which must
    be writable as text."""
    try:
        path.name.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    link = work_dir / "named" / rel_path.rsplit("/", 1)[-1]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(path)
    except OSError:  # no symlinks here (some Windows setups): read it under its own name
        return path
    return link


def run_job(job: FileJob) -> FileOutcome:
    from deepfolder.ingest.registry import get_extractor

    started = time.perf_counter()
    settings = IngestSettings.model_validate(job.settings)
    ctx = ExtractContext(
        rel_path=job.rel_path,
        sha256=job.sha256,
        size=job.size,
        settings=settings,
        work_dir=Path(job.work_dir),
        cache_dir=Path(job.cache_dir) if job.cache_dir else None,
    )
    try:
        if job.size == 0:
            raise ExtractError("file is empty (0 bytes)")
        extractor = get_extractor(job.kind)
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        result = extractor(_readable_path(Path(job.path), job.rel_path, ctx.work_dir), ctx)
        segments = chunk_segments(result.segments, settings)
    except ExtractError as exc:
        return FileOutcome(job.rel_path, False, str(exc), seconds=time.perf_counter() - started)
    except MemoryError:
        return FileOutcome(
            job.rel_path,
            False,
            "ran out of memory reading this file",
            seconds=time.perf_counter() - started,
        )
    except Exception as exc:  # an extractor bug must not stop the other files
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = (
            f"unexpected {type(exc).__name__} while reading ({exc}) at "
            f"{Path(where.filename).name}:{where.lineno}; please report this file type"
        )
        return FileOutcome(job.rel_path, False, reason, seconds=time.perf_counter() - started)
    if not segments and not result.sources:
        return FileOutcome(
            job.rel_path,
            False,
            "; ".join(result.warnings) or "nothing could be read",
            seconds=time.perf_counter() - started,
        )
    return FileOutcome(
        rel_path=job.rel_path,
        ok=True,
        sources=result.sources,
        segments=segments,
        warnings=result.warnings,
        models=dict(ctx.models),
        seconds=time.perf_counter() - started,
    )
