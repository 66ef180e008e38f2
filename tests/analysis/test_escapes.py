"""Escape attempts from the analysis sandbox: each is a cell that must be blocked.

Every cell first switches the audit hook off through ``gc`` (as hostile code would), so
what is tested is the OS boundary, not the guard. A cell prints ``ESCAPED`` when its
attempt worked; the host then checks what the cell cannot see for itself: the input
folder's hash, files outside scratch, a TCP server on 127.0.0.1, a decoy process that
holds the planted API key in its environment, and the key in every byte of output.

On the code before bubblewrap (``unshare --mount --net`` as root, commit 875c7ba) 13 of
the 19 cells got through, each in a fresh sandbox (``benchmarks/sandbox_cost.py``):
parent_environ, audit_bypass_runs_id, read_etc_passwd, ctypes_read_file, list_root,
mount_remount_and_write, setns_into_host_network, raw_socket, fork_200, ptrace, unshare,
chroot, kill_host_process; and the setsid grandchild outlived the run. Counts and the
layer that stops each are in docs/notes/analysis.md.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from analysis_helpers import SALES_CSV, folder_digest

from deepfolder.analysis import CellResult, PythonSandbox, SandboxLimits

pytestmark = pytest.mark.reliability

SECRET_PREFIX = "sk-deepfolder-canary-"
SECRET = SECRET_PREFIX + secrets.token_hex(12)
"""Planted in the parent's environment and in a decoy process's; never in any output."""
TMP_MARKER = f"/tmp/deepfolder_escape_{secrets.token_hex(6)}"

GUARD_OFF = """\
import ctypes, gc, os, socket, sys
gc.unfreeze()  # the worker freezes its start-up objects, which hides them from get_objects
_guards = [o for o in gc.get_objects() if type(o).__name__ == "AuditGuard"]
for _g in _guards:
    _g.active = False
if not _guards:
    raise RuntimeError("the audit guard was not found: this cell would test the guard")
libc = ctypes.CDLL(None, use_errno=True)
"""


def _python_root_names() -> set[str]:
    """Entries of /root the sandbox may show: the path to a bound Python installation."""
    names = set()
    for root in (sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)):
        parts = Path(os.path.realpath(root)).parts
        if len(parts) > 2 and parts[1] == "root":
            names.add(parts[2])
    return names


def _escapes(port: int, decoy_pid: int) -> dict[str, str]:
    return {
        "parent_environ": f"""
def environ(pid):
    with open(f'/proc/{{pid}}/environ', 'rb') as fh:
        return fh.read()
found = []
for entry in os.listdir('/proc'):
    if entry.isdigit():
        try:
            if {SECRET_PREFIX.encode()!r} in environ(entry):
                found.append(entry)
        except OSError:
            continue
try:  # the names only: a failing run must not print the host's variables
    print([kv.split(b'=')[0] for kv in environ(os.getppid()).split(b'\\0')])
except OSError as exc:
    print('parent environ:', exc)
if found:
    print('ESCAPED: the key is in the environ of', found)
""",
        "own_environment": f"""
if any({SECRET_PREFIX!r} in v for v in os.environ.values()) or 'OPENAI_API_KEY' in os.environ:
    print('ESCAPED: inherited', sorted(os.environ))
""",
        "audit_bypass_runs_id": """
import subprocess
try:
    out = subprocess.run(['id'], capture_output=True, text=True).stdout
    print('ESCAPED: id ran:', out)
except OSError as exc:
    print('subprocess:', exc)
if os.system('id') == 0:
    print('ESCAPED: os.system ran id')
""",
        "read_etc_passwd": """
try:
    text = open('/etc/passwd').read()
    if 'root:' in text:
        print('ESCAPED: /etc/passwd read')
except OSError as exc:
    print(exc)
""",
        "ctypes_read_file": """
fd = libc.open(b'/etc/passwd', os.O_RDONLY)
if fd >= 0 and b'root:' in os.read(fd, 4096):
    print('ESCAPED: /etc/passwd read through libc')
""",
        "list_root": f"""
try:
    seen = set(os.listdir('/root')) - set({sorted(_python_root_names())!r})
    if seen:
        print('ESCAPED: /root lists', sorted(seen)[:10])
except OSError as exc:
    print(exc)
""",
        "mount_remount_and_write": """
MS_REMOUNT, MS_BIND = 32, 4096
rcs = [libc.mount(None, p.encode(), None, MS_REMOUNT | MS_BIND, None)
       for p in ('/', DATA_DIR, os.path.dirname(DATA_DIR))]
if 0 in rcs:
    print('ESCAPED: remounted read-write', rcs)
fd = libc.open((DATA_DIR + '/evil.txt').encode(), os.O_WRONLY | os.O_CREAT, 0o644)
if fd >= 0:
    os.write(fd, b'owned')
    print('ESCAPED: wrote into the input folder')
""",
        "write_input_folder": """
for attempt in (lambda: open(DATA_DIR + '/sales.csv', 'a').write('x'),
                lambda: open('sales.csv', 'a').write('through the symlink'),
                lambda: open(DATA_DIR + '/new.txt', 'x'),
                lambda: os.remove(DATA_DIR + '/sales.csv')):
    try:
        attempt()
        print('ESCAPED: changed the input folder')
    except OSError as exc:
        print(type(exc).__name__, exc.errno)
""",
        "write_tmp_outside_scratch": f"""
for p in ({TMP_MARKER!r}, '/var/tmp/deepfolder_escape', '/dev/shm/deepfolder_escape'):
    fd = libc.open(p.encode(), os.O_WRONLY | os.O_CREAT, 0o644)
    if fd >= 0 and p.startswith('/tmp'):
        print('ESCAPED: wrote', p)
""",
        "connect_127_0_0_1": f"""
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')
    print('ESCAPED: connected to the host')
except OSError as exc:
    print(type(exc).__name__, exc)
""",
        "setns_into_host_network": f"""
for pid in ('1', str(os.getppid())):
    try:
        fd = os.open(f'/proc/{{pid}}/ns/net', os.O_RDONLY)
    except OSError:
        continue
    if libc.setns(fd, 0x40000000) == 0:
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')
            print('ESCAPED: connected after setns into', pid)
        except OSError as exc:
            print('setns worked, connect did not:', exc)
""",
        "raw_socket": """
for family, kind, proto in ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                            (socket.AF_PACKET, socket.SOCK_RAW, 0),
                            (socket.AF_NETLINK, socket.SOCK_RAW, 0)):
    try:
        socket.socket(family, kind, proto).close()
        print('ESCAPED: raw socket', family)
    except OSError as exc:
        print(exc)
""",
        "fork_200": """
import time
started = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(3)
        os._exit(0)
    started += 1
if started:
    print('ESCAPED: forked', started, 'processes')
""",
        "ptrace": f"""
PTRACE_SEIZE, PTRACE_DETACH = 0x4206, 17
for pid in ({decoy_pid}, 1):
    if libc.ptrace(PTRACE_SEIZE, pid, None, None) == 0:
        print('ESCAPED: ptrace-attached to', pid)
        libc.ptrace(PTRACE_DETACH, pid, None, None)
""",
        "unshare": """
for flag in (0x10000000, 0x00020000, 0x40000000):  # NEWUSER, NEWNS, NEWNET
    if libc.unshare(flag) == 0:
        print('ESCAPED: unshare', hex(flag))
""",
        "chroot": """
if libc.chroot(b'/') == 0:
    print('ESCAPED: chroot')
""",
        "raise_hard_limit": """
class RLimit(ctypes.Structure):
    _fields_ = [('cur', ctypes.c_ulong), ('max', ctypes.c_ulong)]
infinite = RLimit(ctypes.c_ulong(-1).value, ctypes.c_ulong(-1).value)
for resource_id in (9, 6):  # RLIMIT_AS, RLIMIT_NPROC
    if libc.setrlimit(resource_id, ctypes.byref(infinite)) == 0:
        print('ESCAPED: raised hard limit', resource_id)
""",
        "kernel_module": """
import errno
image = ctypes.create_string_buffer(b'\\x7fELF' + bytes(60))
rc = libc.init_module(image, 64, b'')
# EPERM: refused; ENOSYS: a kernel built without modules. Anything else: the loader ran.
if ctypes.get_errno() not in (errno.EPERM, errno.ENOSYS):
    print('ESCAPED: the module loader was reached', rc, ctypes.get_errno())
""",
        "kill_host_process": f"""
try:
    os.kill({decoy_pid}, 9)
    print('ESCAPED: killed a host process')
except OSError as exc:
    print(exc)
""",
    }


ESCAPE_NAMES = list(_escapes(0, 0))


@pytest.fixture(scope="module")
def decoy() -> Iterator[subprocess.Popen[bytes]]:
    """A host process whose environment holds the API key, like the deepfolder parent."""
    env = {"PATH": "/usr/bin:/bin", "DEEPFOLDER_API_KEY": SECRET, "OPENAI_API_KEY": SECRET}
    proc = subprocess.Popen(["sleep", "600"], env=env)
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[socket.socket]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("folder")
    (path / "sales.csv").write_text(SALES_CSV, encoding="utf-8")
    before = folder_digest(path)
    yield path
    assert folder_digest(path) == before


@pytest.fixture(scope="module")
def sandbox(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, decoy: subprocess.Popen[bytes]
) -> Iterator[PythonSandbox]:
    mp = pytest.MonkeyPatch()
    mp.setenv("DEEPFOLDER_API_KEY", SECRET)
    mp.setenv("OPENAI_API_KEY", SECRET)
    scratch = tmp_path_factory.mktemp("run") / "scratch"
    limits = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=1536)
    try:
        with PythonSandbox(folder, ["sales.csv"], scratch, limits) as shared:
            yield shared
    finally:
        mp.undo()


def _output(result: CellResult) -> str:
    return "\n".join(str(x) for x in (result.stdout, result.stderr, result.value, result.error))


def _connections(srv: socket.socket) -> int:
    n = 0
    while True:
        try:
            conn, _ = srv.accept()
        except (TimeoutError, BlockingIOError):
            return n
        conn.close()
        n += 1


@pytest.mark.parametrize("name", ESCAPE_NAMES)
def test_escape_is_blocked(
    name: str,
    sandbox: PythonSandbox,
    folder: Path,
    server: socket.socket,
    decoy: subprocess.Popen[bytes],
) -> None:
    before = folder_digest(folder)
    code = GUARD_OFF + _escapes(server.getsockname()[1], decoy.pid)[name]
    result = sandbox.run(code)
    output = _output(result)
    assert "ESCAPED" not in output, output
    assert result.ok, output  # the cell ran to its end: the attempt was made and judged
    assert SECRET not in output
    assert folder_digest(folder) == before
    assert not Path(TMP_MARKER).exists()
    assert _connections(server) == 0
    assert decoy.poll() is None, "the decoy host process was killed from the sandbox"


def test_planted_key_is_in_the_parents_environment_for_real(
    decoy: subprocess.Popen[bytes],
) -> None:
    """Control: the key the cells look for is really there to be stolen on the host."""
    environ = Path(f"/proc/{decoy.pid}/environ").read_bytes()
    assert SECRET.encode() in environ


def test_setsid_grandchild_does_not_outlive_the_run(folder: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "run" / "scratch"
    sandbox = PythonSandbox(folder, ["sales.csv"], scratch, SandboxLimits(wall_s=30))
    code = GUARD_OFF + (
        "import time\n"
        "try:\n"
        "    pid = os.fork()\n"
        "except OSError as exc:\n"
        "    pid = None\n"
        "    print('fork refused:', exc)\n"
        "if pid == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        for _ in range(300):\n"
        "            with open('heartbeat.txt', 'a') as fh:\n"
        "                fh.write('.')\n"
        "            time.sleep(0.1)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
    )
    try:
        result = sandbox.run(code)
    finally:
        sandbox.close()
    heartbeat = scratch / "heartbeat.txt"
    time.sleep(0.5)
    size = heartbeat.stat().st_size if heartbeat.exists() else 0
    time.sleep(1.0)
    after = heartbeat.stat().st_size if heartbeat.exists() else 0
    assert after == size, f"a process of the sandbox is still running ({_output(result)})"


def test_no_process_of_the_sandbox_survives_close(folder: Path, tmp_path: Path) -> None:
    sandbox = PythonSandbox(folder, ["sales.csv"], tmp_path / "scratch", SandboxLimits())
    assert sandbox.run("1").ok
    init = sandbox.namespace_init_pid
    assert init is not None
    namespace = os.readlink(f"/proc/{init}/ns/pid")
    members = [p for p in _pids() if _pid_namespace(p) == namespace]
    assert len(members) == 2  # bwrap's init and the worker
    sandbox.close()
    deadline = time.monotonic() + 5
    while [p for p in _pids() if _pid_namespace(p) == namespace] and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel tears the namespace down after its init is killed
    assert [p for p in _pids() if _pid_namespace(p) == namespace] == []


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


# --- through the parent: files the code leaves in scratch for deepfolder to read ------


def test_a_link_in_place_of_the_worker_log_does_not_leak_a_host_file(
    folder: Path, tmp_path: Path
) -> None:
    """On a crash the parent shows the log's tail to the model: it must be the log."""
    host_lines = Path("/etc/passwd").read_text(encoding="utf-8").strip().splitlines()[-8:]
    with PythonSandbox(folder, ["sales.csv"], tmp_path / "scratch", SandboxLimits()) as sandbox:
        result = sandbox.run(
            GUARD_OFF + "os.remove('.sandbox/worker.log')\n"
            "os.symlink('/etc/passwd', '.sandbox/worker.log')\n"
            "ctypes.string_at(0)\n"
        )
        assert result.error_kind == "crash"
        assert not [line for line in host_lines if line in _output(result)]
        assert sandbox.run("1").ok  # the next worker starts despite the planted link


def test_a_link_reported_as_a_figure_does_not_copy_a_host_file(
    folder: Path, tmp_path: Path
) -> None:
    from analysis_helpers import EmptyIndex

    from deepfolder.settings import Settings
    from deepfolder.tools.base import ToolContext
    from deepfolder.tools.python import run_python

    ctx = ToolContext(
        index=EmptyIndex(),  # type: ignore[arg-type]
        settings=Settings(),
        folder=folder,
        run_dir=tmp_path / "run",
        data_files=["sales.csv"],
        sandbox_limits=SandboxLimits(wall_s=30),
    )
    code = GUARD_OFF + (
        "os.symlink('/etc/passwd', 'figures/leak.png')\n"
        "sys.modules['__main__'].SAVED_FIGURES.append(\n"
        "    (os.path.abspath('figures/leak.png'), {'suptitle': 'leak', 'axes': []}))\n"
    )
    try:
        out = run_python(ctx, {"code": code})
    finally:
        assert ctx.sandbox is not None
        ctx.sandbox.close()
    scratch = tmp_path / "run" / "scratch"
    written = [p for p in (tmp_path / "run").rglob("*") if scratch not in p.parents]
    leaked = [p for p in written if p.is_file() and b"root:" in p.read_bytes()]
    assert leaked == []
    assert "root:" not in out.text


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x32 is an x86_64 ABI")
def test_a_call_through_another_abi_ends_the_worker(folder: Path, tmp_path: Path) -> None:
    """Filters are per ABI: an x32 system call (number | 0x40000000) must not slip past
    the x86_64 rules. It kills the whole worker (not just its thread, which would hang
    it until the wall limit)."""
    limits = SandboxLimits(wall_s=15)
    with PythonSandbox(folder, ["sales.csv"], tmp_path / "scratch", limits) as sandbox:
        x32_mount = GUARD_OFF + "libc.syscall(0x40000000 | 165, None, b'/', None, 32 | 4096, None)"
        result = sandbox.run(x32_mount)
        assert result.error_kind == "crash"
        assert "SIGSYS" in (result.error or "")
        assert sandbox.run("1 + 1").value == "2"
