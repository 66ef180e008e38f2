"""The request pacer: even spacing, a hold that every sharer honours, and a state file
that another process shares (or that is damaged)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepfolder.llm.rate_limit import RATE_STATE_ENV, RequestPacer, shared_pacer


def test_requests_are_spaced_and_a_hold_delays_the_next() -> None:
    pacer = RequestPacer(600)  # one every 0.1 s
    started = time.time()
    for _ in range(4):
        pacer.wait_turn()
    assert 0.28 < time.time() - started < 1.0
    pacer.hold(0.3)
    held = time.time()
    pacer.wait_turn()
    assert time.time() - held >= 0.29


TAKE_TURNS = """
import json, sys, time
from pathlib import Path
from deepfolder.llm.rate_limit import RequestPacer
pacer = RequestPacer(300, Path(sys.argv[1]))  # one every 0.2 s
times = []
for _ in range(3):
    pacer.wait_turn()
    times.append(time.time())
print(json.dumps(times))
"""


def test_processes_sharing_the_state_file_share_the_pace(tmp_path: Path) -> None:
    state = tmp_path / "rate_limit.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TAKE_TURNS, str(state)], stdout=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    times = sorted(t for proc in procs for t in json.loads(proc.communicate(timeout=60)[0]))
    assert len(times) == 6
    # any k gaps add up to k * 0.2 s, less the moment between a turn and its timestamp
    for i, j in itertools.combinations(range(6), 2):
        assert times[j] - times[i] >= (j - i) * 0.2 - 0.1, (i, j, times)


def test_a_damaged_state_file_counts_as_no_state(tmp_path: Path) -> None:
    state = tmp_path / "rate_limit.json"
    state.write_text('{"next_slot": "x", "hold_until', encoding="utf-8")
    pacer = RequestPacer(None, state)
    started = time.time()
    pacer.hold(0.2)
    pacer.wait_turn()
    assert 0.19 <= time.time() - started < 1.0
    assert json.loads(state.read_text())["hold_until"] > started


def test_one_pacer_per_process_and_none_without_a_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RATE_STATE_ENV, raising=False)
    assert shared_pacer(None) is None
    assert shared_pacer(60) is shared_pacer(60)
    monkeypatch.setenv(RATE_STATE_ENV, str(tmp_path / "state.json"))
    pacer = shared_pacer(None)  # a batch's worker: Retry-After is shared even without a rate
    assert pacer is not None and pacer.state_path == tmp_path / "state.json"
    with pytest.raises(ValueError, match="must be positive"):
        RequestPacer(0)
