"""The workers of a batch: each task a ``deepfolder run`` process of its own, at most
``batch.jobs`` at once, every change of state written to ``batch.json``.

A worker runs in its own session, so a timeout stops the task's whole process group:
SIGINT first (the run marks itself stopped and closes its analysis worker), SIGKILL
after a grace period. On Linux it is started with ``PR_SET_PDEATHSIG = SIGKILL``, so it
dies with the batch process and ``kill -9`` of the batch leaves no run going on behind a
later ``--resume``; the pre-exec hook that arms it is safe because the batch process runs
no other thread (the live progress line is refreshed by the polling loop itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

import deepfolder
from deepfolder.agent.task_material import MATERIAL_NOTES, parse_entries, write_entries
from deepfolder.llm.rate_limit import RATE_STATE_ENV
from deepfolder.runner.batch_summary import task_row
from deepfolder.runner.batch_tasks import (
    BATCH_RECORD,
    CONFIG,
    Batch,
    BatchError,
    TaskState,
    timestamp,
)
from deepfolder.runner.resume import RUN_RECORD

STOP_GRACE_S = 10.0
"""Seconds a stopped worker gets to mark its run stopped before it is killed."""
POLL_S = 0.2
RATE_STATE = "rate_limit.json"
"""The request-rate state shared by the batch's workers, in the batch directory."""


@dataclass
class Worker:
    """A running ``deepfolder run`` process and what the batch knows about it."""

    task: TaskState
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    log_start: int
    started: float
    deadline: float | None
    stop: str | None = None
    """Why the batch is stopping it: ``timeout`` or ``interrupt``."""
    stop_sent: float = 0.0


class Scheduler:
    """Runs the batch's unfinished tasks, ``batch.jobs`` at a time, recording each change."""

    def __init__(self, batch: Batch, console: Console, *, grace_s: float = STOP_GRACE_S):
        self.batch = batch
        self.console = console
        self.grace_s = grace_s
        self.running: list[Worker] = []
        self.done_walls: list[float] = []
        self.arm = _die_with_batch()

    def run(self) -> None:
        queue = self.batch.unfinished()
        live = Live(console=self.console, auto_refresh=False, transient=True)
        if self.console.is_terminal:
            live.start()
        try:
            while queue or self.running:
                while queue and len(self.running) < self.batch.jobs:
                    self._start(queue.pop(0))
                for worker in list(self.running):
                    self._watch(worker)
                if live.is_started:
                    live.update(self._progress(), refresh=True)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            self._stop_all()
            raise
        finally:
            live.stop()

    # one task
    def _start(self, task: TaskState) -> None:
        run_dir = Path(task.run_dir)
        status = _run_status(run_dir)
        if status == "finished":  # the batch died after the run finished
            task.state, task.reason = "done", None
            self.batch.save()
            self._report(task)
            return
        try:
            command = self._command(task, run_dir, status)
        except BatchError as exc:
            self._end(task, "failed", str(exc))
            return
        log_path = self.batch.dir / "logs" / f"{task.task}.log"
        log = log_path.open("ab")
        task.attempts += 1
        shown = shlex.join(["deepfolder", *command[3:]])
        log.write(f"== attempt {task.attempts} at {timestamp()}: {shown}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(self.batch.dir),
            start_new_session=True,  # the task's own process group, for timeouts
            preexec_fn=self.arm,  # safe: the batch process runs no other thread
        )
        timeout = self.batch.timeout_per_task_s
        now = time.time()
        self.running.append(
            Worker(task, proc, log, log.tell(), now, now + timeout if timeout else None)
        )
        task.state, task.reason, task.pid = "running", None, proc.pid
        task.started_at, task.ended_at, task.exit_code = timestamp(), None, None
        self.batch.save()

    def _command(self, task: TaskState, run_dir: Path, status: str | None) -> list[str]:
        notes = write_material(task, self.batch.dir / "material" / f"{task.task}.json")
        return run_command(task, run_dir, status, self.batch.dir / CONFIG, notes)

    def _watch(self, worker: Worker) -> None:
        code = worker.proc.poll()
        now = time.time()
        if code is None:
            if worker.stop is None and worker.deadline is not None and now > worker.deadline:
                worker.stop, worker.stop_sent = "timeout", now
                _signal_group(worker.proc, signal.SIGINT)
            elif worker.stop is not None and now > worker.stop_sent + self.grace_s:
                _signal_group(worker.proc, signal.SIGKILL)
            return
        _signal_group(worker.proc, signal.SIGKILL)  # whatever the run left behind
        self.running.remove(worker)
        worker.log.close()
        output = _read_from(self.batch.dir / "logs" / f"{worker.task.task}.log", worker.log_start)
        task = worker.task
        task.exit_code = code
        task.wall_s = round(task.wall_s + now - worker.started, 2)
        state, reason = _outcome(code, Path(task.run_dir), worker.stop, output)
        if state == "done":  # what the ETA expects of a task (a bad folder fails in a second)
            self.done_walls.append(now - worker.started)
        if state == "timed_out":
            reason = (
                f"ran past --timeout-per-task {self.batch.timeout_per_task_s:g}s and was "
                "stopped; --resume continues it"
            )
        self._end(task, state, reason)

    def _end(self, task: TaskState, state: str, reason: str | None) -> None:
        task.state, task.reason, task.pid = state, reason, None
        task.ended_at = timestamp()
        self.batch.save()
        self._report(task)

    def _stop_all(self) -> None:
        """Ctrl-C: stop every worker (SIGINT, then SIGKILL) and record them interrupted."""
        for worker in self.running:
            worker.stop, worker.stop_sent = "interrupt", time.time()
            _signal_group(worker.proc, signal.SIGINT)
        deadline = time.time() + self.grace_s
        while self.running:
            for worker in list(self.running):
                if time.time() > deadline:
                    _signal_group(worker.proc, signal.SIGKILL)
                self._watch(worker)
            time.sleep(POLL_S)

    # the console
    def _report(self, task: TaskState) -> None:
        row = task_row(task, self.batch.dir)
        wall = f"{task.wall_s:.1f}s"
        if task.state == "done":
            checks = "validation passed" if row["passed"] else "validation FAILED"
            if row["passed"] is None:
                checks = "not validated"
            details = [checks]
            if row["length"]:
                details.append(f"{row['length']} (asked {row['length_asked']})")
            if row["citations_total"] is not None:
                details.append(f"citations {row['citations_resolving']}/{row['citations_total']}")
            if row["cost"]:
                details.append(f"${row['cost']:.4f}")
            line = f"[green]done[/]      {task.task} in {wall}: " + escape(" · ".join(details))
        elif task.state == "timed_out":
            line = f"[yellow]timed out[/] {task.task} after {wall}: {escape(task.reason or '')}"
        elif task.state == "interrupted":
            line = f"[yellow]stopped[/]   {task.task} after {wall}"
        else:
            line = f"[red]failed[/]    {task.task} after {wall}: {escape(task.reason or '')}"
        self.console.print(line)
        if not self.console.is_terminal:
            self.console.print(self._progress(), highlight=False)

    def _progress(self) -> Text:
        b = self.batch
        total = len(b.tasks)
        ended = sum(t.state in ("done", "failed", "timed_out") for t in b.tasks)
        pending = b.count("pending")
        text = (
            f"[{ended}/{total}] done {b.count('done')} · running {len(self._started())} · "
            f"failed {b.count('failed')} · timed out {b.count('timed_out')} · "
            f"pending {pending} · ETA {self._eta(pending)}"
        )
        return Text(text, style="dim")

    def _eta(self, pending: int) -> str:
        if not self.done_walls:
            return "?"
        mean = sum(self.done_walls) / len(self.done_walls)
        now = time.time()
        left = pending * mean + sum(max(0.0, mean - (now - t)) for t in self._started())
        return _duration(left / self.batch.jobs)

    def _started(self) -> list[float]:
        """When each running task started."""
        return [w.started for w in self.running]


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _run_status(run_dir: Path) -> str | None:
    """The status in the run's ``run.json`` (``running``, ``stopped``, ``finished``);
    None when the run never got that far."""
    try:
        data = json.loads((run_dir / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(data.get("status") or "running") if isinstance(data, dict) else None


def run_command(
    task: TaskState, run_dir: Path, status: str | None, config: Path, notes: Path | None
) -> list[str]:
    """The worker's command: ``run --resume`` for a run that started (``status``, from its
    ``run.json``), else a new run into ``run_dir`` (cleared when it holds only what a run
    writes before it starts) with the batch's ``config`` and the task's material ``notes``."""
    run = [sys.executable, "-m", "deepfolder.cli", "run"]
    if status is not None:  # an interrupted run: its own folder, request and settings
        return [*run, "--resume", str(run_dir)]
    if run_dir.exists():
        _clear_unstarted(run_dir)
    request = [task.request] if task.pass_request else []
    return [
        *run,
        task.folder,
        *request,
        *("--out", str(run_dir), "--config", str(config)),
        *(["--material-notes", str(notes)] if notes else []),
    ]


def write_material(task: TaskState, path: Path) -> Path | None:
    """Write the task's ``multimodal`` entries to ``path`` for ``run --material-notes``;
    None when it has none. A bad entry is a :class:`BatchError` (it fails that task)."""
    if not task.multimodal:
        return None
    try:
        entries = parse_entries(task.multimodal, f"{BATCH_RECORD} task {task.task}")
    except ValueError as exc:
        raise BatchError(f"{exc} (its multimodal entries)") from exc
    path.parent.mkdir(exist_ok=True)
    write_entries(path, entries)
    return path


UNSTARTED = {"request.txt", "settings.json", MATERIAL_NOTES}
"""What a run writes before its ``run.json``: a directory holding only these did no work."""


def _clear_unstarted(run_dir: Path) -> None:
    names = {p.name for p in run_dir.iterdir()}
    if not names <= UNSTARTED:
        raise BatchError(
            f"{run_dir} holds files but no {RUN_RECORD}, so it cannot be resumed; move it "
            "away and resume the batch again"
        )
    shutil.rmtree(run_dir)


def _outcome(code: int, run_dir: Path, stop: str | None, output: str) -> tuple[str, str | None]:
    """The task's state and reason after its worker exited with ``code``."""
    if _run_status(run_dir) == "finished" and code in (0, 1):
        return "done", None
    if stop == "timeout":
        return "timed_out", None
    if stop == "interrupt":
        return "interrupted", "the batch was interrupted; --resume continues it"
    return "failed", _error_line(output) or _describe_exit(code)


def _error_line(output: str) -> str | None:
    """The error the run printed: its ``error:`` / ``model error:`` line, or the last line
    of a traceback."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("error:", "model error:")):
            return line.removeprefix("error:").strip()
    if any(line.startswith("Traceback") for line in lines):
        return lines[-1]
    return None


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"the run was killed by {signal.Signals(-code).name}"
    return f"the run exited with status {code} without a report"


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read().decode("utf-8", errors="replace")


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def worker_env(batch_dir: Path) -> dict[str, str]:
    """The batch's environment, with this deepfolder first on the path, wide lines in
    the logs (so an error message is one line), and the request rate's state file that
    all the batch's workers share (``model.max_requests_per_minute``, Retry-After)."""
    env = dict(os.environ)
    env[RATE_STATE_ENV] = str(batch_dir / RATE_STATE)
    here = str(Path(deepfolder.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "400"
    return env


def _die_with_batch() -> Callable[[], None] | None:
    """A pre-exec hook that makes the worker receive SIGKILL when the batch process dies
    (Linux ``PR_SET_PDEATHSIG``); None elsewhere, where a killed batch leaves its workers
    to finish on their own."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the batch died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm
