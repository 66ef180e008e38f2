"""A real Milvus gRPC server for the tests: ``milvus-lite server`` on a loopback port.

pymilvus talks to it with the same calls as to a Milvus standalone server or cluster, so
the ``milvus-server`` contract tests exercise the distributed code path end to end."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HAS_MILVUS = (
    importlib.util.find_spec("pymilvus") is not None
    and importlib.util.find_spec("milvus_lite") is not None
)
MILVUS_SKIP = 'pymilvus/milvus-lite not installed (pip install "deepfolder[milvus]")'
START_TIMEOUT_S = 60.0


class ServerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server and anything it started (it leads its own process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_until_serving(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    from pymilvus import MilvusClient, MilvusException

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"milvus-lite server exited with status {proc.returncode} before answering "
                f"at {url}; output tail:\n{_tail(log)}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            client = MilvusClient(uri=url, timeout=5)
        except (OSError, MilvusException) as exc:
            last = str(exc)
            time.sleep(0.2)
            continue
        try:
            client.list_collections()
            return
        finally:
            client.close()
    raise ServerError(
        f"milvus-lite server did not answer at {url} within {START_TIMEOUT_S:.0f} s "
        f"({last}); output tail:\n{_tail(log)}"
    )


@contextmanager
def milvus_server(root: Path) -> Iterator[str]:
    """Run ``milvus-lite server`` with its data under ``root``; yield its URL; stop it."""
    port = _free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "milvus_lite", "server"]
        proc = subprocess.Popen(
            [
                *command,
                "--data-dir",
                str(root / "data"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_serving(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
