"""``--compare``: pairing by task, means, deltas, win/tie/loss and the paired bootstrap
interval on data whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.cli import main
from deepfolder.eval.compare import bootstrap_interval, compare_metric, compare_runs, pair_runs
from deepfolder.eval.reports import RunEval
from eval_fixtures import BACKGROUND, GOOD, REPEATING, make_batch


def run(task: str, **metrics: float | None) -> RunEval:
    return RunEval(task, f"runs/{task}", dict(metrics))


def test_pairing_by_task() -> None:
    a = [run("1"), run("2"), run("3")]
    b = [run("3"), run("1"), run("4")]
    pairs, only_a, only_b = pair_runs(a, b)
    assert [(x.task, y.task) for x, y in pairs] == [("1", "1"), ("3", "3")]
    assert (only_a, only_b) == (["2"], ["4"])


def test_bootstrap_interval_on_known_data() -> None:
    # every resampled mean of three equal differences is that difference
    assert bootstrap_interval([0.25, 0.25, 0.25]) == (0.25, 0.25)
    # of 3 draws from {1, 2, 3}, a mean of exactly 1 (or 3) has probability 1/27 > 2.5 %:
    # the percentiles are the extremes
    assert bootstrap_interval([1.0, 2.0, 3.0]) == (1.0, 3.0)
    # one task: no spread to resample
    assert bootstrap_interval([0.4]) == (0.4, 0.4)
    # seeded: the same interval every time, another with another seed
    diffs = [0.1 * k for k in range(20)]
    assert bootstrap_interval(diffs) == bootstrap_interval(diffs)
    low, high = bootstrap_interval(diffs)
    assert low < 0.95 < high  # the mean
    assert bootstrap_interval(diffs, seed=1) != (low, high)


def test_metric_comparison_means_delta_and_win_tie_loss() -> None:
    higher = compare_metric("supported", [(0.9, 0.5), (0.5, 0.5), (0.4, 0.6)], "higher")
    assert higher.tasks == 3
    assert higher.mean_a == pytest.approx(0.6)
    assert higher.mean_b == pytest.approx(1.6 / 3)
    assert higher.delta == pytest.approx(0.2 / 3)
    assert (higher.wins, higher.ties, higher.losses) == (1, 1, 1)
    lower = compare_metric("unsupported", [(0.1, 0.3), (0.2, 0.4)], "lower")
    assert lower.delta == pytest.approx(-0.2)
    assert (lower.wins, lower.ties, lower.losses) == (2, 0, 0)
    assert (lower.low, lower.high) == pytest.approx((-0.2, -0.2))
    neutral = compare_metric("citations", [(3, 1), (1, 3)], None)
    assert (neutral.wins, neutral.ties, neutral.losses) == (0, 2, 0)
    empty = compare_metric("supported", [], "higher")
    assert (empty.tasks, empty.delta, empty.low) == (0, None, None)


def test_runs_without_a_value_are_left_out_of_that_measure() -> None:
    a = [run("1", supported=1.0), run("2", supported=None)]
    b = [run("1", supported=0.5), run("2", supported=0.5)]
    (row,) = compare_runs(a, b, [("supported", "higher")])["metrics"]
    assert (row["tasks"], row["delta"], row["wins"]) == (1, 0.5, 1)


def test_cli_compare_two_batches(tmp_path: Path) -> None:
    # A: a clean report and a background one; B: the same tasks, the first repeating itself
    a = make_batch(tmp_path / "a", {"t1": GOOD, "t2": BACKGROUND, "t3": GOOD}, {})
    b = make_batch(tmp_path / "b", {"t1": REPEATING, "t2": BACKGROUND, "t4": GOOD}, {})
    out = tmp_path / "out"
    argv = ["eval", "reports", str(a), "--compare", str(b), "--out", str(out)]
    assert main([*argv, "--label", "new", "--compare-label", "old"]) == 0
    data = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in data["sets"]] == ["new", "old"]
    comparison = data["comparison"]
    assert comparison["tasks"] == ["t1", "t2"]
    assert (comparison["only_in_runs"], comparison["only_in_baseline"]) == (["t3"], ["t4"])
    rows = {r["key"]: r for r in comparison["metrics"]}
    repeated = rows["repeated_sentences"]
    # per task A − B: 0 − 0.5 and 0 − 0; lower is better, so t1 is a win for A
    assert repeated["delta"] == -0.25
    assert (repeated["wins"], repeated["ties"], repeated["losses"]) == (1, 1, 0)
    # two tasks: resampled means are −0.5 (1/4), −0.25 (1/2) or 0 (1/4)
    assert (repeated["low"], repeated["high"]) == (-0.5, 0.0)
    md = (out / "eval.md").read_text(encoding="utf-8")
    assert "| repeated sentences | 0 % | 25 % | -25.0 pp | [-50.0 pp, 0.0 pp] | 1/1/0 |" in md
    assert "Only in the runs: t3." in md and "Only in the baseline: t4." in md
    assert "## new − old" in md
