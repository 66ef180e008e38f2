"""The analysis worker: a separate Python process that runs model-written code.

This file is executed as a script (``python -I -X utf8 worker.py CMD_FD RESULT_FD``) by
``deepfolder.analysis.sandbox``; it imports nothing of deepfolder, so the worker does not
load the parent's modules. One worker lives for one run and keeps one namespace, like a
notebook kernel: variables, imports and loaded DataFrames survive between calls.

Protocol: on the command pipe the parent first writes the configuration as one JSON
line, then one JSON line per call (``{"code": ...}``); it reads one JSON line back per
call on the result pipe (both file descriptors are given on the command line).
The worker's own stdout/stderr file descriptors go to a log file; the code's ``print``
output is captured in bounded head+tail buffers, so an endless ``print`` loop cannot
exhaust memory or flood the model.

Set-up order matters (see docs/notes/analysis.md):

1. the parent started us inside bubblewrap (``isolation.py``): namespaces, read-only
   binds, seccomp and a fresh environment are already in place; ``self_check`` reports
   what this process can see of them, so a layer the OS refused is named;
2. hard resource limits: address space, file size, open files, processes, no core files;
3. cwd = scratch; matplotlib configured once (Agg, CJK font, MPLCONFIGDIR in scratch);
4. the audit hook (the Python-level guard: clear messages for forbidden writes, reads,
   network and processes), installed last so the set-up itself is not blocked.

After every call the worker kills any other process in its PID namespace (none can be
started under the seccomp filter; this covers a run without it).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import io
import json
import linecache
import os
import resource
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from pathlib import Path
from typing import Any

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/etc/fonts", "/var/cache/fontconfig")
SYSTEM_READ_ROOTS = (
    "/proc",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/dev/null",
    "/dev/urandom",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/etc/os-release",
    "/usr/lib",
    "/lib",
)
"""Reads outside the data folder, scratch and the Python installation that the
scientific stack needs (CPU counts, time zones, shared libraries)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".pdf", ".gif", ".webp")


class SandboxViolation(PermissionError):
    """Raised by the audit hook: the code tried something the sandbox does not allow."""

    kind = "forbidden"


class NetworkDisabled(SandboxViolation):
    kind = "network"


class CPULimitExceeded(BaseException):
    """Raised from the SIGXCPU handler. A BaseException, like KeyboardInterrupt, so that a
    blanket ``except Exception`` in the model's code does not swallow it."""


class BoundedText(io.TextIOBase):
    """A text stream that keeps the first and the last ``limit // 2`` characters."""

    def __init__(self, limit: int) -> None:
        self.head_limit = max(1, limit // 2)
        self.tail_limit = max(1, limit - self.head_limit)
        self.head: list[str] = []
        self.head_len = 0
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        n = len(s)
        self.total += n
        room = self.head_limit - self.head_len
        if room > 0:
            self.head.append(s[:room])
            self.head_len += min(room, n)
            s = s[room:]
        if s:
            self.tail.append(s)
            self.tail_len += len(s)
            while self.tail_len - len(self.tail[0]) >= self.tail_limit:
                self.tail_len -= len(self.tail.popleft())
        return n

    def text(self) -> str:
        head = "".join(self.head)
        tail = "".join(self.tail)
        if len(tail) > self.tail_limit:
            tail = tail[-self.tail_limit :]
        omitted = self.total - len(head) - len(tail)
        if omitted <= 0:
            return head + tail
        return f"{head}\n[... {omitted} characters omitted ...]\n{tail}"


def truncate(text: str, limit: int) -> str:
    buf = BoundedText(limit)
    buf.write(text)
    return buf.text()


# --- set-up ------------------------------------------------------------------------


def is_readonly(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _status_fields() -> dict[str, str]:
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _interfaces() -> list[str]:
    names = []
    with contextlib.suppress(OSError), open("/proc/net/dev", encoding="utf-8") as fh:
        for line in fh.readlines()[2:]:
            names.append(line.split(":")[0].strip())
    return names


def self_check(config: dict[str, Any]) -> dict[str, Any]:
    """What protects this process, seen from inside (the parent turns it into the
    ``isolation`` report; a layer the OS refused shows up here as not active)."""
    status = _status_fields()
    pids = [e for e in os.listdir("/proc") if e.isdigit()]
    data_paths = [os.path.join(config["data_dir"], f) for f in config["data_files"]]
    data_paths = [p for p in data_paths if os.path.exists(p)]
    checks = {
        # in our own PID namespace we are pid 2 (bwrap's init is 1) and alone with it
        "pid_namespace": os.getpid() == 2 and len(pids) <= 2,
        "network_namespace": _interfaces() in (["lo"], []),
        "unprivileged": status.get("Uid", "").split()[:1] == [str(config["uid"])]
        and int(status.get("CapEff", "1"), 16) == 0
        and int(status.get("CapBnd", "1"), 16) == 0,
        "no_new_privs": status.get("NoNewPrivs") == "1",
        "seccomp": status.get("Seccomp") == "2",
        "root_readonly": is_readonly("/"),
        "data_readonly": all(is_readonly(p) for p in data_paths),
        "scratch_writable": not is_readonly(config["scratch"]),
    }
    return {"checks": checks, "env": sorted(os.environ), "pid": os.getpid()}


def reap_strays() -> int:
    """Kill every other process of the sandbox's PID namespace (1 is bwrap's init). Only
    called inside our own namespace, where /proc lists nothing else."""
    killed = 0
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, me):
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
    return killed


def set_limits(config: dict[str, Any]) -> dict[str, int]:
    """Hard limits (soft = hard): the code cannot raise them again, having no capability."""
    wanted = {
        "RLIMIT_AS": int(config["memory_mb"]) * 1024 * 1024,
        "RLIMIT_FSIZE": int(config["file_mb"]) * 1024 * 1024,
        "RLIMIT_NOFILE": int(config["open_files"]),
        "RLIMIT_NPROC": int(config["processes"]),
        "RLIMIT_CORE": 0,
    }
    for name, value in wanted.items():
        if value > 0 or name == "RLIMIT_CORE":
            limit = getattr(resource, name)
            _, hard = resource.getrlimit(limit)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(limit, (value, value))
    # Writing past the file size limit then fails with an OSError instead of killing us.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return {name: resource.getrlimit(getattr(resource, name))[1] for name in wanted}


def _on_sigxcpu(signum: int, frame: Any) -> None:
    raise CPULimitExceeded()


def configure_matplotlib() -> dict[str, Any]:
    """Agg backend, a CJK-capable font first in the sans-serif list, ASCII minus."""
    info: dict[str, Any] = {"font": None, "font_path": None}
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import font_manager

        for path in CJK_FONT_CANDIDATES:
            if os.path.exists(path):
                font_manager.fontManager.addfont(path)
                # A .ttc holds several faces (JP, KR, SC, TC…); prefer Simplified Chinese.
                names = [f.name for f in font_manager.fontManager.ttflist if f.fname == path]
                names = names or [font_manager.FontProperties(fname=path).get_name()]
                name = next((n for n in names if n.endswith(" SC")), names[0])
                info.update(font=name, font_path=path)
                break
        families = [info["font"]] if info["font"] else []
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["font.sans-serif"] = [*families, "DejaVu Sans"]
        matplotlib.rcParams["axes.unicode_minus"] = False
        matplotlib.rcParams["figure.dpi"] = 100
        matplotlib.rcParams["savefig.dpi"] = 120
        matplotlib.rcParams["savefig.bbox"] = "tight"
        import matplotlib.pyplot  # pre-import: the first call is faster

        _track_savefig()
    except Exception as exc:  # matplotlib missing or broken: analysis without charts
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def _track_savefig() -> None:
    """Remember which figures the code saved itself, so they are not saved twice."""
    from matplotlib.figure import Figure

    original = Figure.savefig

    def savefig(self: Any, fname: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, fname, *args, **kwargs)
        if isinstance(fname, (str, os.PathLike)):
            path = os.path.abspath(os.fspath(fname))
            if not os.path.splitext(path)[1]:
                path += "." + str(kwargs.get("format") or "png")
            SAVED_FIGURES.append((path, describe_figure(self)))
            self._deepfolder_saved = True
        return result

    Figure.savefig = savefig  # type: ignore[method-assign]


SAVED_FIGURES: list[tuple[str, dict[str, Any]]] = []


def describe_figure(fig: Any) -> dict[str, Any]:
    """Titles and axis labels, read off the figure (what the chart says it shows)."""
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    axes = []
    for ax in fig.get_axes():
        entry = {
            "title": ax.get_title() or ax.get_title("left") or ax.get_title("right"),
            "xlabel": ax.get_xlabel(),
            "ylabel": ax.get_ylabel(),
        }
        legend = ax.get_legend()
        if legend is not None:
            entry["legend"] = [t.get_text() for t in legend.get_texts()][:10]
        if any(entry.values()):
            axes.append(entry)
    return {"suptitle": suptitle, "axes": axes}


# --- the audit hook ----------------------------------------------------------------

WRITE_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
}
PROCESS_EVENTS = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "pty.spawn",
)
NETWORK_EVENTS = (
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "socket.gethostbyaddr",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class AuditGuard:
    """Python-level guard. Not a security boundary (ctypes or C extensions bypass it);
    it turns the common mistakes into clear, fixable error messages."""

    def __init__(self, scratch: str, read_roots: list[str]) -> None:
        self.scratch = scratch
        self.read_roots = read_roots
        self.active = False
        self.allow_rlimit = False
        self.local = threading.local()

    def _inside(self, path: Any, roots: list[str]) -> bool:
        if isinstance(path, int) or path is None:
            return True  # an already open file descriptor
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        full = os.path.realpath(os.path.abspath(os.fspath(path)))
        return any(full == r or full.startswith(r.rstrip("/") + "/") for r in roots)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            self._check(event, args)
        finally:
            self.local.busy = False

    def _check(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not self._inside(path, [self.scratch]):
                raise SandboxViolation(
                    f"writing to {path!r} is not allowed: the only writable place is the "
                    f"scratch directory (the current directory, {self.scratch}). Save files "
                    f"with relative paths such as 'result.csv' or 'figures/chart.png'."
                )
            if not writing and not self._inside(path, self.read_roots):
                raise SandboxViolation(
                    f"reading {path!r} is not allowed: the sandbox can read the data files, "
                    f"the scratch directory and the Python installation only."
                )
        elif event in WRITE_EVENTS:
            for i in WRITE_EVENTS[event]:
                if i < len(args) and not self._inside(args[i], [self.scratch]):
                    raise SandboxViolation(
                        f"{event.split('.')[-1]}({args[i]!r}) is not allowed: only the "
                        f"scratch directory ({self.scratch}) may be changed."
                    )
        elif event in NETWORK_EVENTS:
            raise NetworkDisabled(
                "network access is disabled in the analysis sandbox; use the data files "
                "in the folder instead."
            )
        elif event.startswith(PROCESS_EVENTS):
            raise SandboxViolation(
                "starting other processes is not allowed in the analysis sandbox "
                "(use Python libraries in this process instead)."
            )
        elif event in ("resource.setrlimit", "resource.prlimit") and not self.allow_rlimit:
            raise SandboxViolation("changing resource limits is not allowed in the sandbox.")


# --- running one cell ----------------------------------------------------------------


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.scratch = config["scratch"]
        self.output_chars = int(config["output_chars"])
        self.cpu_s = float(config["cpu_s"])
        self.cell = 0
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.guard: AuditGuard | None = None

    def prepare_namespace(self) -> None:
        ns = self.namespace
        ns["DATA_DIR"] = self.config["data_dir"]
        ns["DATA_FILES"] = [
            os.path.join(self.config["data_dir"], f) for f in self.config["data_files"]
        ]
        for module, alias in (("numpy", "np"), ("pandas", "pd")):
            with contextlib.suppress(Exception):
                ns[alias] = __import__(module)
        if "pd" in ns:
            pd = ns["pd"]
            pd.set_option("display.max_rows", 40)
            pd.set_option("display.max_columns", 20)
            pd.set_option("display.width", 160)
        with contextlib.suppress(Exception):
            import matplotlib.pyplot as plt

            ns["plt"] = plt

    def set_cpu_limit(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = usage.ru_utime + usage.ru_stime
        soft = int(used + self.cpu_s) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        assert self.guard is not None
        self.guard.allow_rlimit = True
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        finally:
            self.guard.allow_rlimit = False

    def run(self, code: str) -> dict[str, Any]:
        self.cell += 1
        filename = f"<cell {self.cell}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        out, err = BoundedText(self.output_chars), BoundedText(self.output_chars // 2)
        result: dict[str, Any] = {"ok": True, "value": None, "error": None, "error_kind": None}
        started, cpu0 = time.monotonic(), time.process_time()
        SAVED_FIGURES.clear()
        self.set_cpu_limit()
        try:
            with (
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning_to(err)
                value = self._execute(code, filename)
                if value is not None and not _is_plot_object(value):
                    result["value"] = truncate(repr(value), self.output_chars // 2)
        except SyntaxError as exc:
            result.update(ok=False, error_kind="syntax", error=_format_syntax_error(exc))
        except CPULimitExceeded:
            result.update(
                ok=False,
                error_kind="cpu",
                error=f"CPU time limit of {self.cpu_s:g} s exceeded: the code was stopped. "
                "Variables from earlier calls are kept. Use a smaller or vectorised "
                "computation.",
            )
        except MemoryError:
            result.update(
                ok=False,
                error_kind="memory",
                error=f"memory limit of {self.config['memory_mb']} MB exceeded (MemoryError); "
                "the allocation was undone. Work on a subset or use smaller data types.",
            )
        except (Exception, KeyboardInterrupt) as exc:
            violation = _find_violation(exc)
            kind = violation.kind if violation is not None else "exception"
            result.update(ok=False, error_kind=kind, error=_format_error(exc))
        finally:
            self.guard.allow_rlimit = True  # type: ignore[union-attr]
            with contextlib.suppress(Exception):
                resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY,) * 2)
            self.guard.allow_rlimit = False  # type: ignore[union-attr]
        try:
            result["figures"] = self.collect_figures()
        except Exception as exc:
            result["figures"] = []
            err.write(f"\n[figures could not be saved: {type(exc).__name__}: {exc}]\n")
        gc.collect()
        result["stdout"] = out.text()
        result["stderr"] = err.text()
        result["duration_s"] = round(time.monotonic() - started, 3)
        result["cpu_s"] = round(time.process_time() - cpu0, 3)
        return result

    def _execute(self, code: str, filename: str) -> Any:
        tree = ast.parse(code, filename=filename, mode="exec")
        last = None
        tail = tree.body[-1] if tree.body else None
        if isinstance(tail, ast.Expr):
            tree.body.pop()
            last = ast.Expression(tail.value)
        exec(compile(tree, filename, "exec"), self.namespace)
        if last is not None:
            return eval(compile(last, filename, "eval"), self.namespace)
        return None

    def collect_figures(self) -> list[dict[str, Any]]:
        """Saved-by-code figures, then every other open figure saved as figures/fig_N.png.
        All figures are closed afterwards, like a notebook's inline backend."""
        figures = [
            {"path": os.path.relpath(p, self.scratch), "saved_by": "code", **info}
            for p, info in dict(SAVED_FIGURES).items()
            if p.startswith(self.scratch + os.sep) and p.lower().endswith(IMAGE_SUFFIXES)
        ]
        if "matplotlib.pyplot" not in sys.modules:
            return figures
        plt = sys.modules["matplotlib.pyplot"]
        fig_dir = Path(self.scratch) / "figures"
        for num in plt.get_fignums():
            fig = plt.figure(num)
            if getattr(fig, "_deepfolder_saved", False) or not fig.get_axes():
                continue
            fig_dir.mkdir(exist_ok=True)
            n = 1
            while (fig_dir / f"fig_{n}.png").exists():
                n += 1
            path = fig_dir / f"fig_{n}.png"
            info = describe_figure(fig)
            fig.savefig(path)
            figures.append({"path": f"figures/{path.name}", "saved_by": "auto", **info})
        plt.close("all")
        return figures


def _find_violation(exc: BaseException | None, depth: int = 0) -> SandboxViolation | None:
    """The guard's exception, also when a library wrapped it (urllib's URLError keeps it
    in ``reason``; others chain it as the cause or context)."""
    if exc is None or depth > 5:
        return None
    if isinstance(exc, SandboxViolation):
        return exc
    for inner in (getattr(exc, "reason", None), exc.__cause__, exc.__context__):
        if isinstance(inner, BaseException):
            found = _find_violation(inner, depth + 1)
            if found is not None:
                return found
    return None


def _show_warning_to(stream: io.TextIOBase) -> Any:
    def show(message: Any, category: Any, filename: str, lineno: int, *a: Any, **k: Any) -> None:
        stream.write(f"{category.__name__}: {message}\n")

    return show


def _is_plot_object(value: Any) -> bool:
    """Artists returned by plotting calls (``[<Line2D>]``, ``<BarContainer>``): noise."""
    if "matplotlib.artist" not in sys.modules:
        return False
    from matplotlib.artist import Artist
    from matplotlib.container import Container

    items = value if isinstance(value, (list, tuple)) and value else [value]
    return all(isinstance(v, (Artist, Container)) for v in items)


def _format_syntax_error(exc: SyntaxError) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()


def _format_error(exc: BaseException) -> str:
    """The traceback from the first frame of the model's code on; deep library stacks are
    cut to their first two and last three frames."""
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell"):
        tb = tb.tb_next
    te = traceback.TracebackException(type(exc), exc, tb, compact=True)
    frames = [f for f in te.stack if f.filename != __file__]  # the audit hook's own frames
    te.stack = traceback.StackSummary.from_list(frames)
    if len(frames) > 6:
        te.stack = traceback.StackSummary.from_list([*frames[:2], *frames[-3:]])
        omitted = len(frames) - 5
        text = "".join(te.format())
        return text.replace(
            "Traceback (most recent call last):\n",
            f"Traceback (most recent call last; {omitted} library frames omitted):\n",
            1,
        ).rstrip()
    return "".join(te.format()).rstrip()


def main() -> None:
    commands = os.fdopen(int(sys.argv[1]), "r", encoding="utf-8")
    results = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8")
    config = json.loads(commands.readline())
    scratch = config["scratch"]
    ready: dict[str, Any] = {"ready": True, **self_check(config)}
    ready["rlimits"] = set_limits(config)
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    os.chdir(scratch)
    ready["matplotlib"] = configure_matplotlib()
    worker = Worker(config)
    worker.prepare_namespace()
    read_roots = [
        config["data_dir"],
        scratch,
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *[p for p in sys.path if p],
        *FONT_DIRS,
        *SYSTEM_READ_ROOTS,
    ]
    read_roots = [os.path.realpath(r) for r in dict.fromkeys(read_roots)]
    worker.guard = AuditGuard(os.path.realpath(scratch), read_roots)
    sys.addaudithook(worker.guard)
    worker.guard.active = True
    # The ~100,000 objects of the imported stack live as long as the worker: moved out of
    # the collector's reach, the full collection after every call takes milliseconds
    # instead of ~0.2 s.
    gc.collect()
    gc.freeze()
    results.write(json.dumps(ready) + "\n")
    results.flush()
    for line in commands:
        request = json.loads(line)
        reply = worker.run(request["code"])
        if ready["checks"]["pid_namespace"]:
            reply["reaped"] = reap_strays()
        results.write(json.dumps(reply, default=str) + "\n")
        results.flush()


if __name__ == "__main__":
    main()
