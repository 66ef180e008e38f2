"""Extract and chunk one file: the unit of work a worker process runs.

Everything here is plain data in and out (picklable), so the same function runs
in-process or in a ``ProcessPoolExecutor``. Every failure (missing package, corrupt or
encrypted file, undecodable text, an extractor's bug) becomes ``FileOutcome.reason``;
nothing escapes to stop the ingest of the other files.
"""

from __future__ import annotations

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
    )
    try:
        if job.size == 0:
            raise ExtractError("file is empty (0 bytes)")
        extractor = get_extractor(job.kind)
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        result = extractor(Path(job.path), ctx)
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
