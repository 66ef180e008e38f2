"""Network, writes outside scratch, endless loops, memory bombs and crashes are each
stopped with a clear result, and the next call works."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from analysis_helpers import folder_digest

from deepfolder.analysis import PythonSandbox


@pytest.fixture
def server() -> Iterator[socket.socket]:
    """A real TCP server on 127.0.0.1 that the sandboxed code tries to reach."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.5)
    yield srv
    srv.close()


def _assert_no_connection_arrived(srv: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        conn, _ = srv.accept()
        conn.close()
    # positive control: the server is reachable from outside the sandbox
    with socket.create_connection(srv.getsockname(), timeout=2):
        conn, _ = srv.accept()
        conn.close()


def test_network_access_is_blocked(sandbox: PythonSandbox, server: socket.socket) -> None:
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')"
    )
    result = sandbox.run(code)
    assert not result.ok
    assert result.error_kind == "network"
    assert "network access is disabled" in (result.error or "")
    _assert_no_connection_arrived(server)
    import_url = sandbox.run("import urllib.request\nurllib.request.urlopen('http://example.com')")
    assert import_url.error_kind == "network"
    assert sandbox.run("2 * 21").value == "42"


def test_network_namespace_stops_code_that_bypasses_the_guard(
    sandbox: PythonSandbox, server: socket.socket
) -> None:
    """Raw libc socket calls through ctypes skip the audit hook; the namespace still holds."""
    sandbox.run("1")
    if sandbox.isolation.get("network") != "namespace":
        pytest.skip(f"no network namespace here ({sandbox.isolation.get('method')})")
    port = server.getsockname()[1]
    code = (
        "import ctypes, socket, struct\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.socket(2, 1, 0)\n"
        f"addr = struct.pack('=H', 2) + struct.pack('!H', {port}) "
        "+ socket.inet_aton('127.0.0.1') + bytes(8)\n"
        "rc = libc.connect(fd, ctypes.c_char_p(addr), len(addr))\n"
        "(rc, ctypes.get_errno())"
    )
    result = sandbox.run(code)
    assert result.ok, result.error
    assert result.value is not None
    rc, err = eval(result.value)
    assert rc == -1 and err != 0  # ENETUNREACH: only a down loopback in the namespace
    _assert_no_connection_arrived(server)


WRITE_ATTEMPTS = [
    "open(DATA_DIR + '/sales.csv', 'w').write('gone')",
    "open(DATA_DIR + '/new.txt', 'x')",
    "pd.read_csv('sales.csv').to_csv(DATA_DIR + '/sales.csv')",
    "import os\nos.remove(DATA_DIR + '/sales.csv')",
    "import os\nos.rename(DATA_DIR + '/sales.csv', 'stolen.csv')",
    "import os\nos.mkdir(DATA_DIR + '/sub')",
    "import pathlib\npathlib.Path('/tmp/deepfolder_sandbox_escape.txt').write_text('x')",
    "open('../outside_scratch.txt', 'w')",
    "open('sales.csv', 'a').write('through the symlink')",
    "import shutil\nshutil.rmtree(DATA_DIR)",
]


def test_writes_outside_scratch_are_blocked(sandbox: PythonSandbox, data_dir: Path) -> None:
    before = folder_digest(data_dir)
    for code in WRITE_ATTEMPTS:
        result = sandbox.run(code)
        assert result.error_kind == "forbidden", (code, result)
        assert "scratch" in (result.error or "")
    assert folder_digest(data_dir) == before
    assert not Path("/tmp/deepfolder_sandbox_escape.txt").exists()
    assert not (sandbox.scratch_dir.parent / "outside_scratch.txt").exists()
    ok = sandbox.run("open('notes.txt', 'w').write('fine')\nprint(open('notes.txt').read())")
    assert ok.ok and ok.stdout == "fine\n"


def test_read_only_mounts_stop_code_that_bypasses_the_guard(
    sandbox: PythonSandbox, data_dir: Path
) -> None:
    sandbox.run("1")
    if sandbox.isolation.get("filesystem") != "read-only mounts":
        pytest.skip(f"no mount namespace here ({sandbox.isolation.get('method')})")
    before = folder_digest(data_dir)
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "flags = os.O_WRONLY | os.O_CREAT\n"
        "res = []\n"
        "for p in (DATA_DIR + '/evil.txt', '/tmp/deepfolder_raw_escape.txt'):\n"
        "    fd = libc.open(p.encode(), flags, 0o644)\n"
        "    res.append((fd, ctypes.get_errno()))\n"
        "res"
    )
    result = sandbox.run(code)
    assert result.ok, result.error
    import errno

    assert result.value == repr([(-1, errno.EROFS), (-1, errno.EROFS)])
    assert folder_digest(data_dir) == before
    assert not Path("/tmp/deepfolder_raw_escape.txt").exists()


def test_endless_loop_is_stopped_by_the_cpu_limit(
    make_sandbox: Callable[..., PythonSandbox],
) -> None:
    sandbox = make_sandbox(cpu_s=1, wall_s=30)
    assert sandbox.run("kept = 'still here'").ok
    result = sandbox.run("n = 0\nwhile True:\n    n += 1")
    assert not result.ok
    assert result.error_kind == "cpu"
    assert "CPU time limit" in (result.error or "")
    assert not result.state_lost
    after = sandbox.run("kept")
    assert after.ok and after.value == "'still here'"


def test_blocked_call_is_stopped_by_the_wall_limit_and_worker_restarts(
    make_sandbox: Callable[..., PythonSandbox],
) -> None:
    sandbox = make_sandbox(wall_s=2)
    assert sandbox.run("kept = 1").ok
    result = sandbox.run("import time\ntime.sleep(60)")
    assert result.error_kind == "timeout"
    assert result.state_lost
    assert "state is lost" in (result.error or "")
    after = sandbox.run("print('alive')")
    assert after.ok and after.stdout == "alive\n"
    assert after.fresh_worker
    assert sandbox.run("kept").error_kind == "exception"  # NameError: state was lost


def test_memory_bomb_is_stopped_by_the_memory_limit(
    make_sandbox: Callable[..., PythonSandbox],
) -> None:
    sandbox = make_sandbox(memory_mb=1200)
    assert sandbox.run("kept = [1, 2, 3]").ok
    big = sandbox.run("x = np.ones((1024, 1024, 1024))")  # 8 GiB at once
    assert big.error_kind == "memory"
    assert "memory limit of 1200 MB" in (big.error or "")
    creeping = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(50_000_000))")
    assert creeping.error_kind == "memory"
    after = sandbox.run("del chunks\nsum(kept)")
    assert after.ok and after.value == "6"


def test_crashed_worker_is_restarted_and_the_model_is_told(sandbox: PythonSandbox) -> None:
    assert sandbox.run("kept = 1").ok
    crash = sandbox.run("import ctypes\nctypes.string_at(0)")
    assert crash.error_kind == "crash"
    assert "killed by signal SIGSEGV" in (crash.error or "")
    assert crash.state_lost
    assert "state is lost" in (crash.error or "")
    after = sandbox.run("'kept' in globals()")
    assert after.ok and after.value == "False"
    assert after.fresh_worker
