"""The OS boundary around the analysis worker: bubblewrap namespaces and a seccomp filter.

The worker runs model-written Python, so it is treated as hostile. The boundary is built
from two well-kept tools rather than our own code: Debian's ``bwrap`` (bubblewrap) sets
up the namespaces and mounts, and libseccomp (through the ``pyseccomp`` ctypes binding)
compiles the system-call filter that bwrap installs just before it starts Python.

What each layer stops (the escape attempts are cells in tests/analysis/test_escapes.py):

- **user namespace, uid/gid 65534, no capabilities** (``--unshare-user --uid --gid``,
  ``--cap-drop ALL``, ``--disable-userns``): the code is nobody inside its own user
  namespace; mount, setns, module loading, raising hard limits and opening other users'
  namespaces all need capabilities it does not have, and it cannot create a nested user
  namespace to regain them.
- **no_new_privs** (bwrap sets it): no set-uid program or file capability gives privileges
  back.
- **PID namespace + fresh /proc** (``--unshare-pid --proc``): only the sandbox's own
  processes exist; the parent's ``/proc/<pid>/environ``, memory and namespaces are not
  there to read or join. When the parent kills bwrap, ``--die-with-parent`` kills the
  namespace's init and the kernel kills every process left in it.
- **network namespace** (``--unshare-net``): only a loopback interface of its own; no
  connection reaches the host, 127.0.0.1 services included.
- **IPC, UTS, cgroup namespaces**: no shared memory or semaphores with the host; a hostname
  of its own.
- **mount namespace, built from nothing**: an empty root with read-only binds of the
  Python installation, the system libraries (``/usr``), a few ``/etc`` files, the run's
  data files (each one, read-only) and the scratch directory (the only writable place).
  ``/root``, ``/home``, ``/etc/passwd``, ``/tmp`` and the rest of the folder are absent;
  ``/`` and ``/dev`` are remounted read-only after set-up.
- **seccomp** (libseccomp, default allow, listed calls fail with EPERM): mount and every
  new-mount-API call, pivot_root, chroot, setns, unshare, process creation (fork, vfork,
  clone without CLONE_THREAD or with a namespace flag; clone3 answers ENOSYS so threads
  fall back to clone), ptrace and cross-process memory access, kernel modules and kexec,
  bpf, perf, io_uring (its requests bypass seccomp), keyrings, userfaultfd, reboot, swap,
  clock setting, and every socket family except AF_UNIX (raw and packet sockets
  included). A call of another ABI (i386, x32) kills the worker.
- **an environment built from scratch** (``PythonSandbox`` passes bwrap a fresh ``env``):
  no variable of the parent, so no API key.
- **resource limits** (set by the worker before any model code): address space, file size,
  open files, processes (not enforced by the kernel for uid 0 outside the namespace,
  where the seccomp rule is the wall), no core files; CPU time per call; wall time by the
  parent, which kills the whole namespace.

The audit hook in ``worker.py`` stays as the layer that explains: it turns honest mistakes
(writing outside scratch, opening a URL) into clear messages, but it is not a wall.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_UID = 65534
"""nobody: the code runs as this uid and gid inside its user namespace."""
WORKER_INSIDE = "/deepfolder/worker.py"
"""Where the worker script is bound (read-only) inside the sandbox."""

LAYERS = (
    "namespaces",
    "unprivileged",
    "no_new_privs",
    "seccomp",
    "filesystem",
    "environment",
    "rlimits",
)
"""The layers ``analysis.require_isolation`` requires, as reported in
``PythonSandbox.isolation["layers"]``."""

NAMESPACE_FLAGS = (
    "--unshare-user",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
)
SYSTEM_BINDS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
READ_ONLY_EXTRA = ("/sys/devices/system/cpu",)
"""CPU counts for numpy/scikit-learn's thread pools; nothing else of /sys is bound."""

# --- seccomp ----------------------------------------------------------------------

_DENIED_SYSCALLS = (
    # filesystems and namespaces
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "setns",
    "unshare",
    "open_by_handle_at",
    "name_to_handle_at",
    # processes: the worker is one process (threads are allowed, see clone below)
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    # the kernel
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "personality",
    "uselib",
    "lookup_dcookie",
)
_CLONE_THREAD = 0x00010000
_CLONE_NAMESPACES = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
_AF_UNIX = 1


class IsolationUnavailable(RuntimeError):
    """A layer of the boundary cannot be set up here and ``require_isolation`` is on."""


@functools.cache
def seccomp_program() -> bytes:
    """The compiled BPF filter bwrap installs (``--seccomp FD``). Raises
    ``IsolationUnavailable`` naming what is missing."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # the binding, or libseccomp.so.2 under it
        raise IsolationUnavailable(
            f"seccomp: the libseccomp binding cannot be loaded ({type(exc).__name__}: {exc}); "
            "install the analysis extra (pip install 'deepfolder[analysis]') and Debian's "
            "libseccomp2"
        ) from exc
    deny = seccomp.ERRNO(errno.EPERM)
    filt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    # A call of another ABI (i386 int 0x80, x32) ends the worker at once; libseccomp's
    # default kills only the calling thread, which leaves the worker hanging.
    filt.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    for name in _DENIED_SYSCALLS:
        try:
            filt.add_rule(deny, name)
        except OSError:  # not a system call on this architecture (fork on arm64)
            continue
    # A new process is a clone without CLONE_THREAD; a thread may not take a namespace flag.
    filt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0))
    for flag in _CLONE_NAMESPACES:
        filt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory, which seccomp cannot read: ENOSYS makes glibc
    # fall back to clone for threads, where the rules above apply.
    filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for call in ("socket", "socketpair"):
        filt.add_rule(deny, call, seccomp.Arg(0, seccomp.NE, _AF_UNIX))
    with tempfile.TemporaryFile() as fh:
        filt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def seccomp_fd() -> int:
    """A file descriptor holding the filter, for bwrap to read (closed by the caller)."""
    program = seccomp_program()
    fd = os.memfd_create("deepfolder-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# --- bubblewrap -------------------------------------------------------------------


IDENTITY_FLAGS = (
    "--uid",
    str(SANDBOX_UID),
    "--gid",
    str(SANDBOX_UID),
    "--disable-userns",
    "--cap-drop",
    "ALL",
)
"""Who the worker is: nobody, no capabilities, no nested user namespaces (the probe
uses the same flags, so what it finds is what the worker gets)."""


@functools.cache
def bwrap_problem() -> str | None:
    """Why bwrap cannot build the namespaces here, or None when it can (probed once)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (Debian: apt-get install bubblewrap)"
    argv = [
        bwrap,
        *NAMESPACE_FLAGS,
        *IDENTITY_FLAGS,
        "--ro-bind",
        "/usr",
        "/usr",
        *_system_links(),
        "--proc",
        "/proc",
        "--",
        "true",
    ]
    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not be run: {exc}"
    if probe.returncode != 0:
        return (
            f"bwrap refused the namespaces: {probe.stderr.strip() or probe.returncode} "
            "(user namespaces may be disabled: sysctl kernel.unprivileged_userns_clone, "
            "user.max_user_namespaces, or an AppArmor userns restriction)"
        )
    return None


def _system_links() -> list[str]:
    """/bin, /lib… as on the host: symlinks into /usr (merged /usr) or read-only binds."""
    args: list[str] = []
    for path in SYSTEM_BINDS[1:]:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def python_roots() -> list[str]:
    """Directories the worker's interpreter and libraries live in, outside /usr."""
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()]
    real = [os.path.realpath(r) for r in roots]
    # the venv's python is often a symlink into another installation (pyenv, /usr/local)
    real.append(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    kept: list[str] = []
    for root in sorted(set(real), key=len):
        if not os.path.isdir(root) or root == "/" or root.startswith("/usr/"):
            continue
        if any(root == k or root.startswith(k.rstrip("/") + "/") for k in kept):
            continue
        kept.append(root)
    return kept


@dataclass(slots=True)
class WorkerCommand:
    argv: list[str]
    pass_fds: list[int] = field(default_factory=list)
    close_after_start: list[int] = field(default_factory=list)
    """Our copies of descriptors handed to bwrap (the seccomp program)."""
    info_fd: int | None = None
    """Read end of bwrap's --info-fd: its JSON names the namespace's init pid."""


def bwrap_command(
    python_argv: list[str],
    *,
    scratch: Path,
    data_dir: Path,
    data_files: list[str],
    with_seccomp: bool,
) -> WorkerCommand:
    """bwrap's argv around ``python_argv`` (whose script must be ``WORKER_INSIDE``)."""
    bwrap = shutil.which("bwrap")
    assert bwrap is not None
    argv = [
        bwrap,
        *NAMESPACE_FLAGS,
        *IDENTITY_FLAGS,
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        *_system_links(),
    ]
    for path in (*ETC_FILES, *READ_ONLY_EXTRA, *python_roots()):
        argv += ["--ro-bind-try", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--ro-bind", str(Path(__file__).with_name("worker.py")), WORKER_INSIDE]
    for rel in data_files:
        data_file = data_dir / rel
        if data_file.is_file():
            argv += ["--ro-bind", str(data_file), str(data_file)]
    argv += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    # Set-up wrote directories into the root and /dev tmpfs; nothing may after it.
    argv += ["--remount-ro", "/", "--remount-ro", "/dev"]
    command = WorkerCommand(argv)
    if with_seccomp:
        fd = seccomp_fd()
        argv += ["--seccomp", str(fd)]
        command.pass_fds.append(fd)
        command.close_after_start.append(fd)
    info_r, info_w = os.pipe()
    argv += ["--info-fd", str(info_w)]
    command.pass_fds.append(info_w)
    command.close_after_start.append(info_w)
    command.info_fd = info_r
    argv += ["--", *python_argv]
    return command


def missing_layers(report: dict[str, str]) -> list[str]:
    return [name for name in LAYERS if report.get(name) != "active"]
