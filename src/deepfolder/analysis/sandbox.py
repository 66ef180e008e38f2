"""Run model-written Python in a separate, limited, persistent worker process.

``PythonSandbox.run(code)`` sends one cell to the worker (``worker.py``) and returns a
``CellResult``: captured output, the repr of the last expression, new files, figures
and a trimmed traceback. The worker keeps its namespace between calls (notebook
semantics) for the life of one run.

Isolation, from strongest to weakest (what is active is in ``PythonSandbox.isolation``):

- **network namespace** (``unshare --net``): the worker has only a down loopback
  interface; no connection leaves the process, whatever the code does.
- **mount namespace** (``unshare --mount``): inside it every mount is remounted
  read-only except the scratch directory, so the user's folder, /tmp and the rest of the
  filesystem cannot be written, even through ctypes or C code.
- **resource limits**: RLIMIT_AS (memory), RLIMIT_CPU (per call, raised as an exception
  in the worker), RLIMIT_FSIZE (file size); wall time is enforced here by killing the
  worker's process group.
- **audit hook** in the worker: clear messages for writes outside scratch, reads outside
  the data folder / Python installation / fonts, sockets and subprocesses. It is a guard
  against mistakes, not a security boundary.

Namespaces need root or unprivileged user namespaces; without them the worker still
runs, with the audit hook and resource limits only (``isolation["network"] == "guard"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
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


_ISOLATION_PREFIXES: list[tuple[str, list[str], bool]] = [
    ("unshare --mount --net", ["unshare", "--mount", "--net", "--"], True),
    (
        "unshare --user --map-root-user --mount --net",
        ["unshare", "--user", "--map-root-user", "--mount", "--net", "--"],
        True,
    ),
    ("unshare --net", ["unshare", "--net", "--"], False),
    (
        "unshare --user --map-root-user --net",
        ["unshare", "--user", "--map-root-user", "--net", "--"],
        False,
    ),
]
_probe_cache: tuple[str, list[str], bool] | None = None


def probe_isolation() -> tuple[str, list[str], bool]:
    """The strongest namespace prefix that works here: (name, argv prefix, has mount ns)."""
    global _probe_cache
    if _probe_cache is None:
        _probe_cache = ("none", [], False)
        for name, prefix, mounts in _ISOLATION_PREFIXES:
            try:
                ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if ok.returncode == 0:
                _probe_cache = (name, prefix, mounts)
                break
    return _probe_cache


class PythonSandbox:
    """One persistent worker process for one run. Use as a context manager or ``close()``."""

    def __init__(
        self,
        data_dir: Path,
        data_files: list[str],
        scratch_dir: Path,
        limits: SandboxLimits | None = None,
        *,
        use_namespaces: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_files = list(data_files)
        scratch_dir.mkdir(parents=True, exist_ok=True)
        self.scratch_dir = scratch_dir.resolve()
        self.limits = limits or SandboxLimits()
        self.use_namespaces = use_namespaces
        self.isolation: dict[str, Any] = {}
        """What protects this run: filled when the worker starts (see module docstring)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._commands: Any = None
        self._result_fd: int | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self._lost_state = False
        self._started_once = False
        self._finalizer: weakref.finalize | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        hidden = self.scratch_dir / SANDBOX_DIR
        for sub in ("mpl", "tmp", "home", "cache"):
            (hidden / sub).mkdir(parents=True, exist_ok=True)
        (self.scratch_dir / "figures").mkdir(exist_ok=True)
        self._link_data_files()
        name, prefix, mounts = probe_isolation() if self.use_namespaces else ("none", [], False)
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(hidden / "home"),
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
        argv = [*prefix, sys.executable, "-I", "-B", "-X", "utf8", str(WORKER_SCRIPT)]
        argv += [str(cmd_r), str(res_w)]
        with open(hidden / "worker.log", "ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(cmd_r, res_w),
                    cwd=self.scratch_dir,
                    env=env,
                    start_new_session=True,
                )
            finally:
                os.close(cmd_r)
                os.close(res_w)
        self._proc = proc
        self._commands = os.fdopen(cmd_w, "w", encoding="utf-8")
        self._result_fd = res_r
        self._buffer = b""
        self._finalizer = weakref.finalize(self, _kill, proc, self._commands, res_r)
        config = {
            "scratch": str(self.scratch_dir),
            "data_dir": str(self.data_dir),
            "data_files": self.data_files,
            "memory_mb": self.limits.memory_mb,
            "cpu_s": self.limits.cpu_s,
            "output_chars": self.limits.output_chars,
            "file_mb": self.limits.file_mb,
            "lock_filesystem": mounts,
        }
        try:
            self._send(config)
        except OSError:  # the worker exited at once (broken pipe): its log says why
            line: str | None = ""
        else:
            line = self._read_line(time.monotonic() + self.limits.startup_s)
        if not line:
            log_tail = self._log_tail()
            self._kill()
            raise SandboxError(
                f"the analysis worker did not start (isolation: {name}); "
                f"worker log {hidden / 'worker.log'}:\n{log_tail}"
            )
        ready = json.loads(line)
        self.isolation = _describe_isolation(name, mounts, ready)

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
            link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                link.symlink_to(self.data_dir / rel)

    def close(self) -> None:
        """Stop the worker. The scratch directory and its files stay."""
        self._kill()

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
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8")

    def _log_tail(self, lines: int = 8) -> str:
        log = self.scratch_dir / SANDBOX_DIR / "worker.log"
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _kill(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._proc = None
        self._commands = None
        self._result_fd = None


def _kill(proc: subprocess.Popen[bytes], commands: Any, result_fd: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(OSError):
        commands.close()
    with contextlib.suppress(OSError):
        os.close(result_fd)


def _describe_isolation(name: str, mounts: bool, ready: dict[str, Any]) -> dict[str, Any]:
    network = "namespace" if "--net" in name else "guard"
    readonly = bool(ready.get("data_readonly")) and bool(ready.get("root_readonly"))
    return {
        "method": name,
        "network": network,
        "filesystem": "read-only mounts" if mounts and readonly else "guard",
        "mount_report": ready.get("lock"),
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
