"""Two sets of runs lined up by task: ``deepfolder eval reports A… --compare B…``.

For each measure, over the tasks where both sides have a value: the mean of each side,
the mean per-task difference (A − B: positive means A's runs score higher), win / tie /
loss of A per task (by the measure's better direction; equal values tie), and a paired
bootstrap 95% interval of the mean difference: the tasks are resampled with
replacement ``resamples`` times (numpy, seeded, so the interval is reproducible) and the
2.5th and 97.5th percentiles of the resampled means are the interval. An interval that
excludes 0 is the claim "A differs from B" at that level; with few tasks it is wide, as
it should be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from deepfolder.eval.reports import Direction, RunEval

RESAMPLES = 10_000
SEED = 0


@dataclass(slots=True)
class MetricComparison:
    key: str
    tasks: int
    """Tasks where both sides have a value."""
    mean_a: float | None
    mean_b: float | None
    delta: float | None
    """Mean of the per-task differences A − B."""
    low: float | None
    high: float | None
    """Paired bootstrap 95% interval of ``delta``."""
    wins: int
    ties: int
    losses: int
    """Of A against B, by the measure's better direction (all ties without one)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_runs(
    a: Sequence[RunEval], b: Sequence[RunEval]
) -> tuple[list[tuple[RunEval, RunEval]], list[str], list[str]]:
    """(the pairs of runs of the same task, in A's order; tasks only A has; only B has)."""
    by_task = {r.task: r for r in b}
    pairs = [(r, by_task[r.task]) for r in a if r.task in by_task]
    only_a = [r.task for r in a if r.task not in by_task]
    a_tasks = {r.task for r in a}
    only_b = [r.task for r in b if r.task not in a_tasks]
    return pairs, only_a, only_b


def bootstrap_interval(
    diffs: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Paired bootstrap 95% interval of the mean of ``diffs`` (seeded)."""
    values = np.asarray(diffs, dtype=float)
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def compare_metric(
    key: str,
    pairs: Sequence[tuple[float, float]],
    better: Direction,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> MetricComparison:
    """The comparison of one measure over (A value, B value) per task."""
    if not pairs:
        return MetricComparison(key, 0, None, None, None, None, None, 0, 0, 0)
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    diffs = [x - y for x, y in pairs]
    low, high = bootstrap_interval(diffs, resamples=resamples, seed=seed)
    sign = 1 if better == "higher" else -1
    wins = sum(1 for d in diffs if better and sign * d > 0)
    losses = sum(1 for d in diffs if better and sign * d < 0)
    return MetricComparison(
        key,
        len(pairs),
        sum(a) / len(a),
        sum(b) / len(b),
        sum(diffs) / len(diffs),
        low,
        high,
        wins,
        losses=losses,
        ties=len(diffs) - wins - losses,
    )


def compare_runs(
    a: Sequence[RunEval],
    b: Sequence[RunEval],
    metrics: Sequence[tuple[str, Direction]],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """Every measure of ``metrics`` (key, better direction) compared over the paired tasks."""
    pairs, only_a, only_b = pair_runs(a, b)
    rows = []
    for key, better in metrics:
        values = [
            (x, y)
            for ra, rb in pairs
            if (x := ra.value(key)) is not None and (y := rb.value(key)) is not None
        ]
        rows.append(compare_metric(key, values, better, resamples=resamples, seed=seed))
    return {
        "tasks": [ra.task for ra, _ in pairs],
        "only_in_runs": only_a,
        "only_in_baseline": only_b,
        "resamples": resamples,
        "seed": seed,
        "metrics": [r.to_dict() for r in rows],
    }
