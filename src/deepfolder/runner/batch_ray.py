"""``deepfolder batch --engine ray``: each task a Ray task on a cluster.

The batch process is the Ray driver. It submits at most ``batch.jobs`` tasks at once,
each declaring its resources (:func:`task_resources`: one CPU for an endpoint's task;
the embedded model's threads and memory for a local model), and records every change in
``batch.json`` as the local engine does. A Ray task runs the same ``deepfolder run``
command a local worker would (:func:`~.batch_workers.run_command`), as a child process of
the Ray worker that dies with it (``PR_SET_PDEATHSIG``), with the per-task timeout
(SIGINT, then SIGKILL) applied on the node.

Storage. The cases folder (and, for each task, its folder) must be at the same path on
every node. The batch directory may or may not be: the driver writes a random token to
``engine.json`` there, and a task that reads the same token on its node writes its run
directory and log in place (**shared storage**: NFS, a single machine). Elsewhere the
task works in a temporary directory on its node: it gets the batch's ``config.json``,
its material notes and its run directory so far (for ``run --resume``) as bytes, and
returns its run directory (a tar.gz) and log through Ray, which the driver unpacks into
the batch directory. The request rate (``rate_limit.json``) is shared only by tasks that
share the batch directory and its ``flock``; each node's index cache is its own.

Losing a worker. The Ray task is retried once when its worker process or node dies
(``max_retries=1``): the retry finds the run's ``run.json`` and continues it with
``run --resume`` (no recorded model call sent twice). When the retry fails too, the
task is recorded ``failed`` with Ray's reason; no task is ever left without a state.

The code the nodes run is this package, shipped by the driver in the job's
``runtime_env`` (``py_modules``), so a cluster runs the driver's deepfolder; each node
needs the dependencies (``pip install deepfolder[ray]`` and the extras the tasks use).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

import deepfolder
from deepfolder.runner.batch_tasks import CONFIG, Batch, BatchError, TaskState, timestamp
from deepfolder.runner.batch_workers import (
    POLL_S,
    STOP_GRACE_S,
    Scheduler,
    _outcome,
    _run_status,
    run_command,
    worker_env,
    write_material,
)

ENGINE_RECORD = "engine.json"
"""The driver's token: a task that reads it on its node shares the batch directory."""
RAY_EXTRA = "ray"
EMBEDDED_MEMORY_GIB = {"qwen2.5-coder-1.5b": 3.0, "qwen2.5-coder-0.5b": 1.5}
"""Memory a task with the embedded model declares: the weights, the context, the run."""
ENDPOINT_MEMORY_GIB = 0.5
ARCHIVE_LIMIT_BYTES = 512 * 2**20
"""A run directory larger than this is not sent back through Ray (use shared storage)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BatchError(f"--engine ray needs Ray: pip install 'deepfolder[{RAY_EXTRA}]'") from exc
    return ray


def task_resources(
    batch: Batch, embedded_threads: int | None, embedded_name: str
) -> dict[str, Any]:
    """What one task asks of the cluster: CPUs and memory (bytes)."""
    if batch.embedded:
        gib = EMBEDDED_MEMORY_GIB.get(embedded_name, 3.0)
        return {"num_cpus": embedded_threads or 4, "memory": int(gib * 2**30)}
    return {"num_cpus": 1, "memory": int(ENDPOINT_MEMORY_GIB * 2**30)}


def fit_to_nodes(resources: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The task's resources, its CPUs lowered to the largest node's (a task no node can
    hold would wait forever); a :class:`BatchError` when no node has its memory."""
    alive = [n.get("Resources") or {} for n in nodes if n.get("Alive")]
    cpus = max((r.get("CPU", 0) for r in alive), default=0)
    memory = max((r.get("memory", 0) for r in alive), default=0)
    if alive and memory and resources["memory"] > memory:
        raise BatchError(
            f"each task needs {resources['memory'] / 2**30:.1f} GiB of memory and the "
            f"largest node of the Ray cluster offers {memory / 2**30:.1f} GiB; add a larger "
            "node or use the local engine"
        )
    if cpus and resources["num_cpus"] > cpus:
        return {**resources, "num_cpus": cpus}
    return resources


@dataclass
class RayWorker:
    task: TaskState
    ref: Any
    started: float
    stop: str | None = None


class RayScheduler(Scheduler):
    """Runs the batch's unfinished tasks as Ray tasks, ``batch.jobs`` at a time."""

    def __init__(
        self,
        batch: Batch,
        console: Console,
        *,
        address: str | None,
        resources: dict[str, Any],
        grace_s: float = STOP_GRACE_S,
    ) -> None:
        super().__init__(batch, console, grace_s=grace_s)
        self.address = address
        self.resources = resources
        self.in_flight: list[RayWorker] = []

    def run(self) -> None:
        ray = import_ray()
        token = secrets.token_hex(16)
        (self.batch.dir / ENGINE_RECORD).write_text(
            json.dumps({"engine": "ray", "token": token}), encoding="utf-8"
        )
        package = str(Path(deepfolder.__file__).resolve().parent)
        local = {"include_dashboard": False} if self.address is None else {}
        ray.init(
            address=self.address,
            runtime_env={"py_modules": [package], "excludes": ["__pycache__"]},
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=False,
            **local,
        )
        try:
            self.resources = fit_to_nodes(self.resources, ray.nodes())
        except BatchError:
            ray.shutdown()
            raise
        remote = ray.remote(run_on_node).options(
            max_retries=1, retry_exceptions=False, **self.resources
        )
        queue = self.batch.unfinished()
        live = Live(console=self.console, auto_refresh=False, transient=True)
        if self.console.is_terminal:
            live.start()
        try:
            while queue or self.in_flight:
                while queue and len(self.in_flight) < self.batch.jobs:
                    self._submit(remote, queue.pop(0), token)
                refs = [w.ref for w in self.in_flight]
                if refs:
                    ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_S)
                    for worker in [w for w in self.in_flight if w.ref in ready]:
                        self._collect(ray, worker)
                if live.is_started:
                    live.update(self._progress(), refresh=True)
        except KeyboardInterrupt:
            self._cancel_all(ray)
            raise
        finally:
            live.stop()
            ray.shutdown()

    def _submit(self, remote: Any, task: TaskState, token: str) -> None:
        run_dir = Path(task.run_dir)
        status = _run_status(run_dir)
        if status == "finished":  # the batch died after the run finished
            task.state, task.reason = "done", None
            self.batch.save()
            self._report(task)
            return
        spec = {
            "task": task.task,
            "state": _task_fields(task),
            "batch_dir": str(self.batch.dir),
            "token": token,
            "config": (self.batch.dir / CONFIG).read_bytes(),
            "run_archive": _pack_if_small(run_dir),
            "timeout_s": self.batch.timeout_per_task_s,
            "grace_s": self.grace_s,
        }
        task.attempts += 1
        task.state, task.reason, task.pid = "running", None, None
        task.started_at, task.ended_at, task.exit_code = timestamp(), None, None
        self.batch.save()
        self.in_flight.append(RayWorker(task, remote.remote(spec), time.time()))

    def _collect(self, ray: Any, worker: RayWorker) -> None:
        self.in_flight.remove(worker)
        task = worker.task
        now = time.time()
        task.wall_s = round(task.wall_s + now - worker.started, 2)
        try:
            result = ray.get(worker.ref)
        except ray.exceptions.TaskCancelledError:
            self._end(task, "interrupted", "the batch was interrupted; --resume continues it")
            return
        except ray.exceptions.RayError as exc:  # the worker or node died twice, or our bug
            why = " ".join(str(exc).split())[:300]
            self._end(task, "failed", f"the Ray task failed: {type(exc).__name__}: {why}")
            return
        run_dir = Path(task.run_dir)
        if result["run_archive"] is not None:  # not shared: the run comes back through Ray
            shutil.rmtree(run_dir, ignore_errors=True)
            unpack(result["run_archive"], run_dir)
        if result["log"] is not None:
            with (self.batch.dir / "logs" / f"{task.task}.log").open("ab") as log:
                log.write(result["log"])
        task.exit_code = result["code"]
        stop: str | None = result["stop"]
        if worker.stop == "interrupt":
            stop = "interrupt"
        state, reason = _outcome(result["code"], run_dir, stop, result["output"])
        if state == "done":
            self.done_walls.append(now - worker.started)
        if state == "timed_out":
            reason = (
                f"ran past --timeout-per-task {self.batch.timeout_per_task_s:g}s and was "
                "stopped; --resume continues it"
            )
        self._end(task, state, reason)

    def _cancel_all(self, ray: Any) -> None:
        """Ctrl-C: cancel every task without force (its run gets SIGINT and marks itself
        stopped), wait for the runs to say so (Ray reports a task cancelled at once, and
        would kill its worker with the driver), then force what is left; record them."""
        for worker in self.in_flight:
            worker.stop = "interrupt"
            ray.cancel(worker.ref, force=False)
        deadline = time.time() + self.grace_s + 5
        while time.time() < deadline and any(
            _run_status(Path(w.task.run_dir)) == "running" for w in self.in_flight
        ):
            time.sleep(POLL_S)
        for worker in list(self.in_flight):
            ready, _ = ray.wait([worker.ref], num_returns=1, timeout=0)
            if ready:
                self._collect(ray, worker)
                continue
            with contextlib.suppress(Exception):
                ray.cancel(worker.ref, force=True)
            self.in_flight.remove(worker)
            self._end(
                worker.task, "interrupted", "the batch was interrupted; --resume continues it"
            )

    def _started(self) -> list[float]:
        return [w.started for w in self.in_flight]


def _pack_if_small(run_dir: Path) -> bytes | None:
    """The run so far, for a node without the batch directory; None when there is none
    or it is too large to send (such a node then starts the task anew)."""
    if not run_dir.exists():
        return None
    try:
        return pack(run_dir)
    except BatchError:
        return None


def _task_fields(task: TaskState) -> dict[str, Any]:
    return {
        "task": task.task,
        "folder": task.folder,
        "request": task.request,
        "request_from": task.request_from,
        "pass_request": task.pass_request,
        "run_dir": task.run_dir,
        "multimodal": task.multimodal,
    }


# -- on the node ----------------------------------------------------------------------------
def run_on_node(spec: dict[str, Any]) -> dict[str, Any]:
    """The body of one Ray task: run the task's ``deepfolder run`` on this node. Returns
    the exit status, why it was stopped (``timeout``, ``interrupt`` or None), what this
    attempt printed, and — when the batch directory is not shared — the run directory
    (tar.gz bytes) and the log bytes."""
    batch_dir = Path(spec["batch_dir"])
    shared = _reads_token(batch_dir, spec["token"])
    work = batch_dir if shared else Path(tempfile.mkdtemp(prefix="deepfolder-ray-"))
    try:
        task = TaskState(**spec["state"])
        run_dir = work / "runs" / task.task
        if not shared:
            (work / "logs").mkdir(parents=True)
            (work / CONFIG).write_bytes(spec["config"])
            if spec["run_archive"] is not None:
                unpack(spec["run_archive"], run_dir)
            task.run_dir = str(run_dir)
        status = _run_status(run_dir)
        notes = write_material(task, work / "material" / f"{task.task}.json")
        command = run_command(task, run_dir, status, work / CONFIG, notes)
        log_path = work / "logs" / f"{task.task}.log"
        with log_path.open("ab") as log:
            start = log.tell()
            shown = shlex.join(["deepfolder", *command[3:]])
            where = f"{socket.gethostname()}, ray worker pid {os.getpid()}"
            log.write(f"== attempt on ray ({where}) at {timestamp()}: {shown}\n".encode())
            log.flush()
            code, stop = run_child(
                command, log, worker_env(work), spec["timeout_s"], spec["grace_s"]
            )
        output = log_path.read_bytes()[start:]
        return {
            "code": code,
            "stop": stop,
            "output": output.decode("utf-8", errors="replace"),
            "run_archive": None if shared else pack(run_dir),
            "log": None if shared else output,
        }
    finally:
        if not shared:
            shutil.rmtree(work, ignore_errors=True)


def _reads_token(batch_dir: Path, token: str) -> bool:
    try:
        data = json.loads((batch_dir / ENGINE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("token") == token


CHILD_START = (
    "import ctypes, os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "    if os.getppid() != int(sys.argv[1]):\n"
    "        os._exit(137)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
"""Run in the child before it becomes the run (a Ray worker has threads, so no pre-exec
hook). It restores SIGINT's default and unblocks it: a Ray worker blocks SIGINT, a
child inherits the signal mask through exec, and a run that never receives SIGINT
cannot be stopped gracefully by a timeout or a cancellation (it would be killed). On Linux it
arms ``PR_SET_PDEATHSIG``: a killed Ray worker takes its run with it, and the retry never
finds the old attempt still writing."""


def run_child(
    command: list[str], log: Any, env: dict[str, str], timeout_s: float | None, grace_s: float
) -> tuple[int, str | None]:
    """Run ``command`` in its own process group until it exits; past ``timeout_s`` it
    gets SIGINT, then SIGKILL after ``grace_s``. A cancellation of the Ray task
    (KeyboardInterrupt here) stops it the same way. The exit status and why it was
    stopped."""
    command = [sys.executable, "-c", CHILD_START, str(os.getpid()), *command]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + timeout_s if timeout_s else None
    stop: str | None = None
    stop_sent = 0.0
    while True:
        try:
            code = proc.poll()
            if code is not None:
                _kill_group(proc.pid, signal.SIGKILL)  # whatever the run left behind
                return code, stop
            now = time.time()
            if stop is None and deadline is not None and now > deadline:
                stop, stop_sent = "timeout", now
                _kill_group(proc.pid, signal.SIGINT)
            elif stop is not None and now > stop_sent + grace_s:
                _kill_group(proc.pid, signal.SIGKILL)
            time.sleep(POLL_S)
        except KeyboardInterrupt:  # ray.cancel: stop the run, let it say so
            if stop is None:
                stop, stop_sent = "interrupt", time.time()
                _kill_group(proc.pid, signal.SIGINT)


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def pack(run_dir: Path) -> bytes:
    """A run directory as tar.gz bytes (its files relative to it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(run_dir, arcname=".")
    data = buffer.getvalue()
    if len(data) > ARCHIVE_LIMIT_BYTES:
        raise BatchError(
            f"{run_dir} is {len(data) // 2**20} MiB packed, too large to send through Ray; "
            "put the batch directory on storage every node shares"
        )
    return data


def unpack(data: bytes, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")
