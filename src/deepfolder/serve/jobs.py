"""Runs started from the page: one ``deepfolder run`` process each, as the batch does.

A job is a ``python -m deepfolder.cli run …`` process in its own process group (so a
crash ends only that run), writing its console output to ``.serve-logs/<run>.log`` beside
the run directory (a new run's directory must start empty). Cancel sends SIGINT to the group (the run marks itself ``stopped`` in
``run.json`` and closes its sandbox), then SIGKILL after a grace period; resume starts
``deepfolder run --resume RUN_DIR``. Progress is the run's own ``trace.jsonl``: each
step, once written (fsynced), becomes one event of :func:`progress_events`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import deepfolder
from deepfolder.records import short_hash
from deepfolder.serve.catalog import RunFileError, read_jsonl

STOP_GRACE_S = 10.0


class JobError(Exception):
    """A run cannot be started as asked; the message says why."""


@dataclass
class Job:
    id: str
    run_dir: Path
    command: list[str]
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.time)
    cancelled: bool = False

    @property
    def state(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "running"
        if self.cancelled or code == 130:
            return "cancelled"
        return "finished" if code == 0 else "failed"

    @property
    def log_path(self) -> Path:
        return log_path(self.run_dir)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


class Jobs:
    """The runs this server started; ``folders`` is the allow-list of input folders."""

    def __init__(
        self, folders: list[Path], runs_root: Path, run_args: list[str] | None = None
    ) -> None:
        self.folders = [f.resolve() for f in folders]
        self.runs_root = runs_root
        self.run_args = list(run_args or [])
        """Settings options given to every run (``--config``, ``--cache-dir``…)."""
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def folder(self, index: int) -> Path:
        """A folder of the allow-list, by its position (the page never sends a path)."""
        if not 0 <= index < len(self.folders):
            raise JobError(f"no folder number {index} in the allow-list")
        return self.folders[index]

    def start(self, folder_index: int, request: str, model: str = "", base_url: str = "") -> Job:
        folder = self.folder(folder_index)
        if not request.strip():
            raise JobError("type the request")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = self.runs_root / f"{folder.name}-{stamp}-{short_hash(request, time.time())[:4]}"
        command = [sys.executable, "-m", "deepfolder.cli", "run", str(folder), request]
        command += ["--out", str(run_dir), *self.run_args]
        if model.strip():
            command += ["--model", model.strip()]
        if base_url.strip():
            command += ["--base-url", base_url.strip()]
        return self._spawn(run_dir, command)

    def resume(self, run_dir: Path) -> Job:
        if any(j.run_dir == run_dir and j.state == "running" for j in self.jobs.values()):
            raise JobError(f"{run_dir.name} is running already")
        command = [sys.executable, "-m", "deepfolder.cli", "run", "--resume", str(run_dir)]
        return self._spawn(run_dir, command)

    def _spawn(self, run_dir: Path, command: list[str]) -> Job:
        log_file = log_path(run_dir)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            log = log_file.open("ab")
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_run_env(),
                    start_new_session=True,  # its own process group, for cancel
                )
            finally:
                log.close()
            job = Job(short_hash(str(run_dir), time.time(), length=10), run_dir, command, proc)
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobError(f"no job {job_id}") from None

    def cancel(self, job_id: str, grace_s: float = STOP_GRACE_S) -> Job:
        job = self.get(job_id)
        if job.proc.poll() is None:
            job.cancelled = True
            _signal_group(job.proc, signal.SIGINT)
            threading.Thread(target=_kill_after, args=(job.proc, grace_s), daemon=True).start()
        return job

    def stop_all(self) -> None:
        """Cancel every job still running and wait for them (the server is closing)."""
        running = [j for j in self.jobs.values() if j.proc.poll() is None]
        for job in running:
            self.cancel(job.id, grace_s=STOP_GRACE_S)
        for job in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                job.proc.wait(timeout=STOP_GRACE_S + 2)


def log_path(run_dir: Path) -> Path:
    return run_dir.parent / ".serve-logs" / f"{run_dir.name}.log"


def progress_events(job: Job, poll_s: float = 0.3) -> Iterator[dict[str, Any]]:
    """One event per new step of the run's trace, then one ``end`` event with the
    process's outcome. Blocks between polls; the caller runs it off the event loop."""
    seen = 0
    trace = job.run_dir / "trace.jsonl"
    while True:
        running = job.proc.poll() is None
        try:
            steps = read_jsonl(trace) if trace.exists() else []
        except RunFileError:
            steps = []
        for step in steps[seen:]:
            yield {"event": "step", "data": step_line(step)}
        seen = max(seen, len(steps))
        if not running:
            yield {
                "event": "end",
                "data": f"{job.state} (exit {job.proc.returncode})\n{job.log_tail(600)}",
            }
            return
        time.sleep(poll_s)


def step_line(step: dict[str, Any]) -> str:
    """A one-line summary of a trace step for the live view."""
    kind = step.get("kind", "?")
    if kind == "model_call":
        usage = step.get("usage") or {}
        return (
            f"model call ({step.get('purpose', '')}): {usage.get('input_tokens', 0)} in, "
            f"{usage.get('output_tokens', 0)} out, {step.get('duration', 0):.1f}s"
        )
    if kind == "tool_call":
        return f"tool {step.get('name')}({_short(str(step.get('arguments')), 80)})"
    if kind == "tool_result":
        return f"result of {step.get('name')}: {len(step.get('evidence_ids') or [])} evidence"
    if kind == "validation":
        verdict = "passed" if step.get("passed") else f"{len(step.get('failures') or [])} failing"
        return f"validation round {step.get('round')}: {verdict}"
    if kind == "note":
        return f"note: {_short(str(step.get('message', '')), 160)}"
    if kind == "final_answer":
        return f"draft written ({len(str(step.get('text', '')))} characters)"
    return kind


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _kill_after(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _run_env() -> dict[str, str]:
    """This server's environment with this deepfolder first on the path and wide lines
    in the log."""
    env = dict(os.environ)
    here = str(Path(deepfolder.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "400"
    env["NO_COLOR"] = "1"
    return env
