"""One ingest of a folder at a time: an advisory lock on the index directory.

Two ingests of the same folder (two terminals, a ``run`` beside an ``ingest``, a batch of
cases sharing a folder) would both open the lexical index for writing; tantivy allows
one writer, so the second used to die with a ``LockBusy`` traceback. The second now waits
(``waiting for another ingest of FOLDER (pid N)…``) and then finds the first one's work
in the manifest, so it re-reads nothing.

``flock`` locks belong to the open file and vanish when the process dies, so a killed
ingest never leaves a stale lock behind; the pid in the file is only for the message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent ingests are not guarded
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "ingest.lock"


@contextlib.contextmanager
def ingest_lock(index_dir: Path, folder: Path, notice: Callable[[str], None]) -> Iterator[None]:
    """Hold the ingest lock of ``index_dir``; wait (telling ``notice`` once) when another
    process holds it."""
    if fcntl is None:
        yield
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip() or "?"
            notice(f"waiting for another ingest of {folder} (pid {holder})…")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
