"""The pace of requests to an endpoint, shared by every process that sends them.

``model.max_requests_per_minute`` spaces the requests of a run ``60 / N`` seconds apart
(a token bucket holding one token: no burst, so no minute ever holds more than N). A
``Retry-After`` (429 or 503) seen by one client holds every client until then.

Within one process the state is in memory. The workers of a batch share it through a
small JSON file (``{"next_slot": t, "hold_until": t}``, epoch seconds) named by
``DEEPFOLDER_RATE_LIMIT_FILE``, read and rewritten under an exclusive ``flock``: the
batch sets the variable to ``rate_limit.json`` in its directory. A waiting client holds
no lock while it sleeps, and looks again when it wakes (another worker may have met a
Retry-After meanwhile), so the slot goes to whoever asks first after it opens. A damaged
or empty file counts as no state: the pace resumes from now.

``flock`` is advisory and local to a machine (on NFS it depends on the server): workers
on several machines share the pace only where their filesystem honours it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the pace is shared within one process only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("deepfolder.llm")

RATE_STATE_ENV = "DEEPFOLDER_RATE_LIMIT_FILE"
"""The shared state file of a batch's workers (set by the batch)."""


class RequestPacer:
    """Spaces requests ``60 / per_minute`` seconds apart and honours holds, either in
    this process (``state_path`` None) or across processes through ``state_path``."""

    def __init__(self, per_minute: float | None, state_path: Path | None = None) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError(f"max_requests_per_minute must be positive, got {per_minute}")
        self.interval_s = 60.0 / per_minute if per_minute else 0.0
        self.state_path = state_path if fcntl is not None else None
        self._memory = {"next_slot": 0.0, "hold_until": 0.0}
        self._thread_lock = threading.Lock()
        self.waited_s = 0.0
        """Seconds this process has waited for its turn so far."""

    def wait_turn(self) -> float:
        """Block until this client may send a request; the seconds waited."""
        waited = 0.0
        while True:
            with self._state() as state:
                now = time.time()
                start = max(now, state["hold_until"], state["next_slot"])
                if start <= now:
                    state["next_slot"] = now + self.interval_s
                    self.waited_s += waited
                    if waited >= 1.0:
                        log.info("waited %.1fs for the shared request rate", waited)
                    return waited
            pause = start - now
            time.sleep(pause)
            waited += pause

    def hold(self, seconds: float) -> None:
        """No client sends before ``seconds`` from now (an endpoint's Retry-After)."""
        with self._state() as state:
            state["hold_until"] = max(state["hold_until"], time.time() + seconds)

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, float]]:
        """The state, locked; what the block leaves in it is written back."""
        with self._thread_lock:
            if self.state_path is None:
                yield self._memory
                return
            fd = os.open(self.state_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state = _parse(os.pread(fd, 4096, 0))
                before = dict(state)
                yield state
                if state != before:
                    data = json.dumps(state).encode("ascii")
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, data, 0)
            finally:
                os.close(fd)  # releases the flock


def _parse(raw: bytes) -> dict[str, float]:
    state = {"next_slot": 0.0, "hold_until": 0.0}
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return state
    if isinstance(data, dict):
        for key in state:
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                state[key] = float(value)
    return state


_PACERS: dict[tuple[float | None, str | None], RequestPacer] = {}
_PACERS_LOCK = threading.Lock()


def shared_pacer(per_minute: float | None) -> RequestPacer | None:
    """The pacer of this process for ``per_minute`` (one per rate and state file, so the
    models of a run share it); None when there is neither a rate nor a batch's state file
    (nothing to wait for)."""
    path = os.environ.get(RATE_STATE_ENV) or None
    if per_minute is None and path is None:
        return None
    with _PACERS_LOCK:
        key = (per_minute, path)
        if key not in _PACERS:
            _PACERS[key] = RequestPacer(per_minute, Path(path) if path else None)
        return _PACERS[key]
