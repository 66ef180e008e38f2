"""Run model-written Python in a separate, limited, persistent worker process.

``PythonSandbox.run(code)`` sends one cell to the worker (``worker.py``) and returns a
``CellResult``: captured output, the repr of the last expression, new files, figures
and a trimmed traceback. The worker keeps its namespace between calls (notebook
semantics) for the life of one run.

The worker is started inside an OS boundary (``isolation.py``: bubblewrap namespaces,
read-only binds, a seccomp filter, a fresh environment, hard resource limits) and reports
from inside what protects it. ``PythonSandbox.isolation["layers"]`` says, per layer,
``active`` or why not. With ``require_isolation`` (the default, setting
``analysis.require_isolation``) a missing layer stops the sandbox before any code runs
(``IsolationUnavailable``); without it the code runs with whatever layers exist, down to
the audit hook and resource limits alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.analysis import isolation
from deepfolder.analysis.isolation import IsolationUnavailable

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
MAX_REPLY_BYTES = 32 << 20
"""A reply line longer than this is not the worker's bounded output: it is stopped."""
SANDBOX_DIR = ".sandbox"
"""Inside scratch: the worker's log, matplotlib config, HOME and TMPDIR. Dot entries of
scratch are never reported as new files."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    wall_s: float = 60.0
    """Wall-clock seconds for one call; past it the worker is killed and restarted."""
    cpu_s: float = 60.0
    """CPU seconds for one call (RLIMIT_CPU); past it the code is interrupted, state kept."""
    memory_mb: int = 2048
    """Address-space limit of the worker (RLIMIT_AS), including the libraries (~550 MB)."""
    output_chars: int = 4000
    """Characters of stdout kept (head + tail); stderr and the last value get half each."""
    file_mb: int = 256
    """Largest file the code may write (RLIMIT_FSIZE)."""
    startup_s: float = 120.0
    """Time allowed for the worker to start and import the scientific stack."""
    open_files: int = 256
    """Open file descriptors of the worker (RLIMIT_NOFILE)."""
    processes: int = 64
    """Processes and threads of the sandbox user (RLIMIT_NPROC; not enforced by the kernel
    when deepfolder runs as root, where the seccomp filter forbids new processes)."""


@dataclass(slots=True)
class FigureInfo:
    path: str
    """Relative to the scratch directory, e.g. ``figures/fig_1.png``."""
    title: str
    description: str
    """Titles, axis labels and legend entries read off the figure."""
    saved_by: str
    """``code`` (the code called savefig) or ``auto`` (left open, saved by the sandbox)."""


@dataclass(slots=True)
class CellResult:
    ok: bool
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    """repr of the last expression, like a notebook's Out[n]."""
    error: str | None = None
    error_kind: str | None = None
    """syntax, exception, forbidden, network, cpu, memory, timeout, crash."""
    files: list[str] = field(default_factory=list)
    """New or changed files, relative to scratch."""
    figures: list[FigureInfo] = field(default_factory=list)
    state_lost: bool = False
    """The worker was killed or died during this call: variables are gone."""
    fresh_worker: bool = False
    """A new worker was started for this call after an earlier one was lost."""
    duration_s: float = 0.0


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (worker does not start): our problem, not the code's."""


def probe_isolation() -> dict[str, str]:
    """Which layers this machine can set up before any worker starts: layer -> ``active``
    or the reason it is refused (the worker confirms the rest from inside)."""
    report = dict.fromkeys(isolation.LAYERS, "active")
    problem = isolation.bwrap_problem()
    if problem is not None:
        for layer in ("namespaces", "unprivileged", "no_new_privs", "filesystem", "seccomp"):
            report[layer] = f"refused: {problem}"
    else:
        try:
            isolation.seccomp_program()
        except IsolationUnavailable as exc:
            report["seccomp"] = f"refused: {exc}"
    return report


class PythonSandbox:
    """One persistent worker process for one run. Use as a context manager or ``close()``."""

    def __init__(
        self,
        data_dir: Path,
        data_files: list[str],
        scratch_dir: Path,
        limits: SandboxLimits | None = None,
        *,
        require_isolation: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_files = list(data_files)
        scratch_dir.mkdir(parents=True, exist_ok=True)
        self.scratch_dir = scratch_dir.resolve()
        self.limits = limits or SandboxLimits()
        self.require_isolation = require_isolation
        self.isolation: dict[str, Any] = {}
        """What protects this run: filled when the worker starts (see module docstring)."""
        self.namespace_init_pid: int | None = None
        """Host pid of the PID namespace's init (bwrap's), while a worker runs in one."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._commands: Any = None
        self._result_fd: int | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self._lost_state = False
        self._started_once = False
        self._finalizer: weakref.finalize | None = None
        self._log_fd: int | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        # Earlier code may have left symlinks in scratch: what this process (perhaps root)
        # creates there must land in scratch, not where a link points.
        hidden = self.scratch_dir / SANDBOX_DIR
        _real_dir(hidden)
        for sub in ("mpl", "tmp", "home", "cache"):
            _real_dir(hidden / sub)
        _real_dir(self.scratch_dir / "figures")
        self._link_data_files()
        planned = probe_isolation()
        refused = {k: v for k, v in planned.items() if v != "active"}
        if refused and self.require_isolation:
            raise IsolationUnavailable(_refusal(refused))
        use_bwrap = planned["namespaces"] == "active"
        with_seccomp = planned["seccomp"] == "active"
        env = _worker_env(self.scratch_dir, hidden)
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        script = isolation.WORKER_INSIDE if use_bwrap else str(WORKER_SCRIPT)
        python = [sys.executable, "-I", "-B", "-X", "utf8", script, str(cmd_r), str(res_w)]
        if use_bwrap:
            command = isolation.bwrap_command(
                python,
                scratch=self.scratch_dir,
                data_dir=self.data_dir,
                data_files=self.data_files,
                with_seccomp=with_seccomp,
            )
        else:
            command = isolation.WorkerCommand(python)
        self._open_log(hidden / "worker.log")
        try:
            proc = subprocess.Popen(
                command.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_fd,
                stderr=self._log_fd,
                pass_fds=(cmd_r, res_w, *command.pass_fds),
                cwd=self.scratch_dir,
                env=env,  # built from scratch: nothing of the parent's environment
                start_new_session=True,
            )
        finally:
            for fd in (cmd_r, res_w, *command.close_after_start):
                os.close(fd)
        self._proc = proc
        self._commands = os.fdopen(cmd_w, "w", encoding="utf-8")
        self._result_fd = res_r
        self._buffer = b""
        self._finalizer = weakref.finalize(self, _kill, proc, self._commands, res_r, self._log_fd)
        deadline = time.monotonic() + self.limits.startup_s
        self.namespace_init_pid = _read_info(command.info_fd, deadline)
        config = {
            "scratch": str(self.scratch_dir),
            "data_dir": str(self.data_dir),
            "data_files": self.data_files,
            "memory_mb": self.limits.memory_mb,
            "cpu_s": self.limits.cpu_s,
            "output_chars": self.limits.output_chars,
            "file_mb": self.limits.file_mb,
            "open_files": self.limits.open_files,
            "processes": self.limits.processes,
            "uid": isolation.SANDBOX_UID,
        }
        try:
            self._send(config)
        except OSError:  # the worker exited at once (broken pipe): its log says why
            line: str | None = ""
        else:
            line = self._read_line(deadline)
        if not line:
            log_tail = self._log_tail()
            self._kill()
            method = "bubblewrap" if use_bwrap else "no isolation"
            raise SandboxError(
                f"the analysis worker did not start ({method}); "
                f"worker log {hidden / 'worker.log'}:\n{log_tail}"
            )
        ready = json.loads(line)
        self.isolation = _describe_isolation(planned, ready, env)
        missing = isolation.missing_layers(self.isolation["layers"])
        if missing and self.require_isolation:
            self._kill()
            raise IsolationUnavailable(_refusal({k: self.isolation["layers"][k] for k in missing}))

    def _open_log(self, path: Path) -> None:
        """The worker's stdout/stderr. Read back through this descriptor, never by path:
        the code can replace the file in scratch with a link to a host file, not this
        inode."""
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        if path.is_symlink():
            path.unlink()
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._log_fd = os.open(path, flags, 0o644)

    def _link_data_files(self) -> None:
        """Symlink each data file into scratch at its folder-relative path, so code that
        opens ``"sales.csv"`` as the folder summary names it works from the scratch cwd.
        Writes through the links are still refused (they resolve into the data folder)."""
        for rel in self.data_files:
            parts = Path(rel).parts
            if not parts or Path(rel).is_absolute() or ".." in parts or parts[0].startswith("."):
                continue
            link = self.scratch_dir / rel
            if link.exists() or link.is_symlink():
                continue
            with contextlib.suppress(OSError):
                for ancestor in reversed(link.relative_to(self.scratch_dir).parents[:-1]):
                    _real_dir(self.scratch_dir / ancestor)  # never through a link
                link.symlink_to(self.data_dir / rel)

    def read_file(self, rel_path: str, max_bytes: int = 64 << 20) -> bytes | None:
        """A regular file of scratch, opened one path component at a time without
        following links, so a link the code left cannot make us read a host file."""
        parts = Path(rel_path).parts
        if not parts or Path(rel_path).is_absolute() or ".." in parts:
            return None
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        fds = [os.open(self.scratch_dir, flags | os.O_DIRECTORY)]
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                fds.append(os.open(part, flags | (0 if last else os.O_DIRECTORY), dir_fd=fds[-1]))
            st = os.fstat(fds[-1])
            if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
                return None
            with os.fdopen(os.dup(fds[-1]), "rb") as fh:
                return fh.read(max_bytes)
        except OSError:
            return None
        finally:
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        """Stop the worker. The scratch directory and its files stay."""
        self._kill()
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    def __enter__(self) -> PythonSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- running code ---------------------------------------------------------------

    def run(self, code: str) -> CellResult:
        with self._lock:
            fresh = False
            if self._proc is None or self._proc.poll() is not None:
                fresh = self._started_once
                self.start()
                self._started_once = True
            before = _snapshot(self.scratch_dir)
            started = time.monotonic()
            try:
                self._send({"code": code})
            except (BrokenPipeError, OSError):
                line: str | None = ""
            else:
                line = self._read_line(started + self.limits.wall_s)
            if line:
                result = _parse_result(json.loads(line))
            elif line is None:
                self._kill()
                result = CellResult(
                    ok=False,
                    error_kind="timeout",
                    error=f"wall-time limit of {self.limits.wall_s:g} s exceeded: the Python "
                    "worker was stopped and restarted. Its state is lost: re-run imports and "
                    "re-load data before continuing. Make the computation smaller.",
                    state_lost=True,
                )
            else:
                result = self._crash_result()
            result.fresh_worker = fresh or self._lost_state
            self._lost_state = result.state_lost
            result.duration_s = round(time.monotonic() - started, 3)
            result.files = _changed(before, _snapshot(self.scratch_dir))
            return result

    def _crash_result(self) -> CellResult:
        status = self._proc.wait(timeout=10) if self._proc is not None else None
        if status is not None and self.isolation.get("method") == "bubblewrap" and status > 128:
            status = 128 - status  # bwrap exits with 128 + the signal that killed the worker
        if status is not None and status < 0:
            how = f"killed by signal {signal.Signals(-status).name}"
        else:
            how = f"exit status {status}"
        tail = self._log_tail()
        self._kill()
        return CellResult(
            ok=False,
            error_kind="crash",
            error=f"the Python worker crashed ({how}); its state is lost: variables, imports "
            "and loaded data are gone and a fresh worker starts on the next call."
            + (f"\nLast lines of the worker log:\n{tail}" if tail else ""),
            state_lost=True,
        )

    # --- plumbing -------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self._commands.write(json.dumps(message, ensure_ascii=False) + "\n")
        self._commands.flush()

    def _read_line(self, deadline: float) -> str | None:
        """One line from the worker; None on timeout, "" when the worker is gone."""
        assert self._result_fd is not None
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._result_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._result_fd, 1 << 16)
            if not chunk:
                return ""
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY_BYTES:  # bounded output never gets here
                assert self._proc is not None
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                return ""
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8")

    def _log_tail(self, lines: int = 8) -> str:
        if self._log_fd is None:
            return ""
        try:
            size = os.fstat(self._log_fd).st_size
            data = os.pread(self._log_fd, min(size, 16384), max(0, size - 16384))
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def _kill(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # also closes the log: read its tail before
            self._finalizer = None
            self._log_fd = None
        self._proc = None
        self._commands = None
        self._result_fd = None


def _kill(proc: subprocess.Popen[bytes], commands: Any, result_fd: int, log_fd: int | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(OSError):
        commands.close()
    with contextlib.suppress(OSError):
        os.close(result_fd)
    if log_fd is not None:
        with contextlib.suppress(OSError):
            os.close(log_fd)


def _worker_env(scratch: Path, hidden: Path) -> dict[str, str]:
    """The worker's whole environment, built from nothing: no variable of the parent."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(hidden / "home"),
        "PWD": str(scratch),  # bwrap's --chdir sets it too
        "TMPDIR": str(hidden / "tmp"),
        "MPLCONFIGDIR": str(hidden / "mpl"),
        "XDG_CACHE_HOME": str(hidden / "cache"),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # pandas stores strings in Arrow when pyarrow is installed; Arrow's own
        # allocator reserves ~1 GB of address space on first use, which the worker's
        # RLIMIT_AS would then lack for loading libraries (scipy's .so files fail to
        # map). The system allocator reserves only what is used.
        "ARROW_DEFAULT_MEMORY_POOL": "system",
    }


def _real_dir(path: Path) -> None:
    """``path`` as a real directory: a link or file in its place is removed first."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(exist_ok=True)


def _read_info(fd: int | None, deadline: float) -> int | None:
    """bwrap's --info-fd JSON (written once the namespaces exist): the init's host pid."""
    if fd is None:
        return None
    data = b""
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    with contextlib.suppress(ValueError, TypeError):
        return int(json.loads(data)["child-pid"])
    return None


def _refusal(refused: dict[str, str]) -> str:
    lines = "\n".join(f"- {layer}: {why}" for layer, why in refused.items())
    return (
        "the analysis sandbox cannot isolate model-written code here, so no code is run:\n"
        f"{lines}\nFix the layers above, or set analysis.require_isolation = false to run "
        "code with the remaining layers (not a security boundary)."
    )


def _describe_isolation(
    planned: dict[str, str], ready: dict[str, Any], env: dict[str, str]
) -> dict[str, Any]:
    """Each layer: ``active`` when the worker confirms it from inside, else why not."""
    checks: dict[str, bool] = ready.get("checks", {})

    def confirmed(layer: str, *names: str) -> str:
        if planned.get(layer, "active") != "active":
            return planned[layer]
        failed = [n for n in names if not checks.get(n)]
        if failed:
            return "refused: not in effect inside the worker (" + ", ".join(failed) + ")"
        return "active"

    extra = sorted(set(ready.get("env", [])) - set(env))
    layers = {
        "namespaces": confirmed("namespaces", "pid_namespace", "network_namespace"),
        "unprivileged": confirmed("unprivileged", "unprivileged"),
        "no_new_privs": confirmed("no_new_privs", "no_new_privs"),
        "seccomp": confirmed("seccomp", "seccomp"),
        "filesystem": confirmed("filesystem", "root_readonly", "data_readonly"),
        "environment": "active" if not extra else f"refused: inherited {extra}",
        "rlimits": "active" if ready.get("rlimits") else "refused: not set",
    }
    if not checks.get("scratch_writable", True):
        layers["filesystem"] = "refused: the scratch directory is not writable"
    return {
        "method": "bubblewrap" if planned["namespaces"] == "active" else "none",
        "layers": layers,
        "rlimits": ready.get("rlimits"),
        "network": "namespace" if layers["namespaces"] == "active" else "guard",
        "filesystem": "read-only mounts" if layers["filesystem"] == "active" else "guard",
        "font": (ready.get("matplotlib") or {}).get("font"),
        "font_path": (ready.get("matplotlib") or {}).get("font_path"),
        "matplotlib_error": (ready.get("matplotlib") or {}).get("error"),
    }


def _parse_result(data: dict[str, Any]) -> CellResult:
    figures = []
    for fig in data.get("figures", []):
        title = fig.get("suptitle") or next(
            (a["title"] for a in fig.get("axes", []) if a.get("title")), ""
        )
        figures.append(
            FigureInfo(
                path=fig["path"],
                title=title,
                description=_figure_description(fig),
                saved_by=fig.get("saved_by", "auto"),
            )
        )
    return CellResult(
        ok=bool(data.get("ok")),
        stdout=data.get("stdout", ""),
        stderr=data.get("stderr", ""),
        value=data.get("value"),
        error=data.get("error"),
        error_kind=data.get("error_kind"),
        figures=figures,
    )


def _figure_description(fig: dict[str, Any]) -> str:
    parts = []
    if fig.get("suptitle"):
        parts.append(f"title: {fig['suptitle']}")
    for i, ax in enumerate(fig.get("axes", []), 1):
        bits = [f"{k}: {ax[k]}" for k in ("title", "xlabel", "ylabel") if ax.get(k)]
        if ax.get("legend"):
            bits.append("legend: " + ", ".join(ax["legend"]))
        if bits:
            parts.append(f"axes {i} (" + "; ".join(bits) + ")")
    return "; ".join(parts)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                st = path.stat()
                found[path.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_size)
    return found


def _changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(p for p, sig in after.items() if before.get(p) != sig)
