"""``deepfolder batch``: many tasks with one set of settings, one run directory each,
resumable after anything short of losing the disk.

A batch directory holds:

- ``batch.json`` — the batch's state: the command, the settings' hash, the model,
  start and end, and each task's state (``pending``, ``running``, ``done``, ``failed``
  with the reason, ``timed_out``, ``interrupted``). It is replaced atomically (temporary
  file, fsync, rename) after every change, so a kill leaves the last state whole.
- ``config.json`` — the resolved settings every task runs with, as a config file: a
  task started on a later ``--resume`` gets exactly the settings of the first ones.
- ``runs/TASK/`` — each task's own run directory, as ``deepfolder run`` writes it.
- ``logs/TASK.log`` — what each attempt of the task printed.
- ``summary.md``, ``summary.csv``, ``summary.json`` — written when the batch ends.

Each task is a ``deepfolder run`` process of its own (a crash, a bad folder or a
timeout ends that task only), in its own session so that a timeout stops the task's
whole process group: SIGINT first (the run marks itself stopped, closes its analysis
worker), SIGKILL after a grace period. On Linux a worker is also killed when the batch
process dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of the batch leaves no run going on
behind a later ``--resume``.

``--resume`` takes the state from ``batch.json``: done tasks are skipped; a task whose run
directory has a ``run.json`` is continued with ``deepfolder run --resume RUN_DIR``
(recorded model calls are replayed, never sent twice), or taken as done when that run
had finished; any other task starts anew. Two batch processes never work in one batch
directory at once (an advisory lock, released when the process dies).

Tasks that share a folder share its index: the index cache is keyed by the folder and
the ingest settings, and the ingest lock (:mod:`deepfolder.ingest.lock`) makes a second
worker wait for the first one's ingest and then find every file cached.

``--engine ray`` runs each task as a Ray task on a cluster instead (:mod:`.batch_ray`);
``batch.json`` records the engine, and ``--resume`` keeps it unless told otherwise.

Here: starting and resuming a batch. The tasks and ``batch.json``:
:mod:`.batch_tasks`; the worker processes: :mod:`.batch_workers`; the Ray engine:
:mod:`.batch_ray`; the summary: :mod:`.batch_summary`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from deepfolder.runner.batch_summary import summarize
from deepfolder.runner.batch_tasks import (
    BATCH_RECORD,
    CONFIG,
    Batch,
    BatchError,
    TaskSpec,
    TaskState,
    discover_tasks,
    timestamp,
)
from deepfolder.runner.batch_workers import Scheduler
from deepfolder.runner.request import RunSetupError, resolve_request
from deepfolder.runner.resume import write_json_durably
from deepfolder.settings import Settings

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one batch per directory is not guarded
    fcntl = None  # type: ignore[assignment]


def model_label(settings: Settings) -> str:
    spec = settings.model.model
    return f"embedded:{settings.embedded.name}" if spec == "embedded" else spec


def is_embedded(settings: Settings) -> bool:
    return settings.model.model == "embedded" or settings.model.model.startswith("embedded:")


def default_batch_dir(cases_dir: Path) -> Path:
    return Path("runs") / f"batch-{cases_dir.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"


def find_batch_dir(cases_dir: Path, runs: Path = Path("runs")) -> Path:
    """The newest batch of ``cases_dir`` under ``runs/``, for ``--resume`` without --out."""
    cases = str(cases_dir.resolve())
    found = []
    for record in sorted(runs.glob(f"batch-*/{BATCH_RECORD}")):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text(encoding="utf-8")).get("cases_dir") == cases:
                found.append(record.parent)
    if not found:
        raise BatchError(f"no batch of {cases} under {runs}/; pass --out BATCH_DIR")
    return max(found, key=lambda p: p.stat().st_mtime)


def start_batch(
    cases_dir: Path,
    settings: Settings,
    *,
    out: Path | None,
    only: list[str] | None,
    jobs: int | None,
    timeout_s: float | None,
    command: list[str],
    console: Console,
    engine: str = "local",
    ray_address: str | None = None,
) -> int:
    """Lay out a new batch directory, run every task, write the summary; the exit status."""
    layout, specs = discover_tasks(cases_dir, only)
    cases = cases_dir.resolve()
    batch_dir = (out or default_batch_dir(cases_dir)).resolve()
    if batch_dir == cases or cases in batch_dir.parents:
        raise BatchError(
            f"the batch directory {batch_dir} would be inside the cases folder {cases}; "
            "deepfolder never writes into its input: pass --out somewhere else"
        )
    if (batch_dir / BATCH_RECORD).exists():
        raise BatchError(
            f"{batch_dir} already holds a batch: add --resume to continue it, or choose "
            "another --out"
        )
    if batch_dir.exists() and any(batch_dir.iterdir()):
        raise BatchError(f"{batch_dir} exists and is not empty; choose another --out")
    embedded = is_embedded(settings)
    jobs = jobs if jobs is not None else (1 if embedded else 4)
    _check_jobs(jobs, timeout_s)
    _check_engine(engine, ray_address)
    (batch_dir / "runs").mkdir(parents=True, exist_ok=True)
    (batch_dir / "logs").mkdir(exist_ok=True)
    with _batch_lock(batch_dir):
        write_json_durably(batch_dir / CONFIG, settings.to_json_dict())
        batch = Batch(
            dir=batch_dir,
            cases_dir=str(cases),
            layout=layout,
            command=command,
            settings_hash=settings.settings_hash(),
            model=model_label(settings),
            embedded=embedded,
            jobs=jobs,
            timeout_per_task_s=timeout_s,
            tasks=[_task_state(spec, batch_dir) for spec in specs],
            started_at=timestamp(),
            engine=engine,
            ray_address=ray_address,
        )
        batch.save()
        where = "" if engine == "local" else f" on Ray ({ray_address or 'a local cluster'})"
        console.print(
            f"[bold]deepfolder batch[/] {cases} → {batch_dir}: {len(specs)} task(s), "
            f"{escape(batch.model)}, {jobs} at a time{escape(where)}"
        )
        if embedded and jobs > 1:
            console.print(
                f"[yellow]{jobs} workers each load the embedded model (memory and CPU "
                "threads add up)[/]"
            )
        return _run_and_summarize(batch, console)


def resume_batch(
    cases_dir: Path,
    batch_dir: Path | None,
    *,
    jobs: int | None,
    timeout_s: float | None,
    command: list[str],
    console: Console,
    engine: str | None = None,
    ray_address: str | None = None,
) -> int:
    """Continue the batch in ``batch_dir`` (default: the newest of ``cases_dir``), on
    the engine it ran on unless ``engine`` / ``ray_address`` say otherwise."""
    batch_dir = (batch_dir or find_batch_dir(cases_dir)).resolve()
    with _batch_lock(batch_dir):
        batch = Batch.load(batch_dir)
        if Path(batch.cases_dir) != cases_dir.resolve():
            raise BatchError(
                f"{batch_dir} is a batch of {batch.cases_dir}, not of {cases_dir.resolve()}"
            )
        _check_settings(batch)
        batch.jobs = jobs if jobs is not None else batch.jobs
        if timeout_s is not None:
            batch.timeout_per_task_s = timeout_s
        _check_jobs(batch.jobs, batch.timeout_per_task_s)
        if engine is not None:
            batch.engine, batch.ray_address = engine, None
        batch.ray_address = ray_address or batch.ray_address
        _check_engine(batch.engine, batch.ray_address)
        todo = [t for t in batch.tasks if t.state != "done"]
        batch.resumes.append({"at": timestamp(), "command": command, "tasks": len(todo)})
        batch.ended_at = None
        batch.save()
        console.print(
            f"[bold]deepfolder batch --resume[/] {batch_dir}: {batch.count('done')} done, "
            f"{len(todo)} to run"
        )
        return _run_and_summarize(batch, console)


def _check_jobs(jobs: int, timeout_s: float | None) -> None:
    if jobs < 1:
        raise BatchError(f"--jobs {jobs}: give at least 1")
    if timeout_s is not None and timeout_s <= 0:
        raise BatchError(f"--timeout-per-task {timeout_s:g}: give a positive number of seconds")


def _check_engine(engine: str, ray_address: str | None) -> None:
    if engine not in ("local", "ray"):
        raise BatchError(f"--engine {engine}: choose local or ray")
    if ray_address and engine != "ray":
        raise BatchError("--ray-address goes with --engine ray")
    if engine == "ray":  # the extra's one-line message before any work
        from deepfolder.runner.batch_ray import import_ray

        import_ray()


def _check_settings(batch: Batch) -> None:
    """The settings a new task would get now must be the batch's (config.json read again,
    with today's DEEPFOLDER_* variables)."""
    from deepfolder.settings import SettingsError, load_settings

    try:
        now = load_settings(config_path=batch.dir / CONFIG).settings_hash()
    except SettingsError as exc:
        raise BatchError(f"cannot resume {batch.dir}: {exc}") from exc
    if now != batch.settings_hash:
        raise BatchError(
            f"cannot resume {batch.dir}: its settings now resolve to hash {now}, not "
            f"{batch.settings_hash} as recorded (a DEEPFOLDER_* variable or "
            f"{batch.dir / CONFIG} changed); restore them, or start a new batch"
        )


def _task_state(spec: TaskSpec, batch_dir: Path) -> TaskState:
    try:
        own = resolve_request(spec.folder, None)[0] == spec.request
    except (RunSetupError, OSError):
        own = False
    return TaskState(
        task=spec.task,
        folder=str(spec.folder.resolve()),
        request=spec.request,
        request_from=spec.request_from,
        pass_request=not own,
        run_dir=str(batch_dir / "runs" / spec.task),
        multimodal=spec.multimodal,
    )


@contextlib.contextmanager
def _batch_lock(batch_dir: Path) -> Iterator[None]:
    if fcntl is None or not batch_dir.is_dir():
        if not batch_dir.is_dir():
            raise BatchError(f"{batch_dir} is not a batch directory")
        yield
        return
    fd = os.open(batch_dir / "batch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip() or "?"
            raise BatchError(
                f"another batch process (pid {holder}) is working in {batch_dir}; wait for "
                "it or stop it first"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def _scheduler(batch: Batch, console: Console) -> Scheduler:
    if batch.engine != "ray":
        return Scheduler(batch, console)
    from deepfolder.runner.batch_ray import RayScheduler, task_resources
    from deepfolder.settings import load_settings

    settings = load_settings(config_path=batch.dir / CONFIG)
    resources = task_resources(batch, settings.embedded.n_threads, settings.embedded.name)
    return RayScheduler(batch, console, address=batch.ray_address, resources=resources)


def _run_and_summarize(batch: Batch, console: Console) -> int:
    scheduler = _scheduler(batch, console)
    try:
        scheduler.run()
    except KeyboardInterrupt:
        _write_summary(batch, console)
        console.print(
            "\n[yellow]interrupted[/]: continue with "
            f"deepfolder batch {batch.cases_dir} --out {batch.dir} --resume"
        )
        return 130
    batch.ended_at = timestamp()
    batch.save()
    _write_summary(batch, console)
    return 0 if batch.count("done") == len(batch.tasks) else 1


def _write_summary(batch: Batch, console: Console) -> None:
    table = summarize(batch)
    out = Console()  # the table on standard output; the progress is on standard error
    if not out.is_terminal:
        out = Console(width=200)  # a file or pipe: every column readable
    out.print(table)
    console.print(f"summary: {batch.dir / 'summary.md'} (also .csv, .json)")
