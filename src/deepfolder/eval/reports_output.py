"""What ``deepfolder eval reports`` writes: the console table, ``eval.json``, ``eval.md``
and ``eval.html`` (tables and charts: mean per measure, per-task heat map, and with
``--compare`` the differences with their intervals).

The charts are matplotlib PNGs embedded as data URIs, so ``eval.html`` is one file that
opens anywhere. matplotlib comes with the ``analysis`` extra; without it the HTML has
the tables only and says so. Chinese task names and labels need a CJK font: the first of
the analysis sandbox's candidates that exists (``fonts-noto-cjk`` on Debian).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deepfolder.analysis.worker import CJK_FONT_CANDIDATES
from deepfolder.eval.judge import LABELS as JUDGE_LABELS
from deepfolder.eval.reports import METRIC_BY_KEY, METRICS, Direction, RunEval

JUDGE_KEYS = tuple(JUDGE_LABELS)  # IR, FA, CC, IF, DQ, total


def metric_keys(runs: Sequence[RunEval]) -> list[str]:
    """The model-free measures, then the judge's when any run was judged."""
    keys = [m.key for m in METRICS]
    if any(r.judge for r in runs):
        keys += list(JUDGE_KEYS)
    return keys


def label(key: str) -> str:
    return METRIC_BY_KEY[key].label if key in METRIC_BY_KEY else JUDGE_LABELS[key]


def better(key: str) -> Direction:
    return METRIC_BY_KEY[key].better if key in METRIC_BY_KEY else "higher"


def kind(key: str) -> str:
    return METRIC_BY_KEY[key].kind if key in METRIC_BY_KEY else "score"


def fmt(key: str, value: float | None, *, delta: bool = False) -> str:
    """A value as a reader wants it: shares in %, scores to one decimal, counts whole."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    sign = "+" if delta and value > 0 else ""
    k = kind(key)
    if k == "share":  # a difference of shares is in percentage points
        return f"{sign}{100 * value:.1f} pp" if delta else f"{100 * value:.0f} %"
    if k == "percent":
        return f"{sign}{value:.1f} {'pp' if delta else '%'}"
    if k == "cost":
        return f"{sign}${value:.4f}"
    if k in ("rate", "score"):
        return f"{sign}{value:.2f}" if k == "rate" else f"{sign}{value:.1f}"
    if delta and k == "count":
        return f"{sign}{value:.1f}"
    return f"{sign}{value:,.0f}"


def mean(values: Sequence[float | None]) -> float | None:
    given = [v for v in values if v is not None]
    return sum(given) / len(given) if given else None


def summary(runs: Sequence[RunEval], keys: Sequence[str]) -> dict[str, float | None]:
    """Mean of each measure over the runs that have it."""
    return {k: mean([r.value(k) for r in runs]) for k in keys}


# --- console and Markdown ---------------------------------------------------------------


CONSOLE_TASKS = 8
"""Up to this many runs the console shows a column per task; beyond, the means only
(``eval.md`` has every task)."""


def runs_table(runs: Sequence[RunEval], keys: Sequence[str], title: str) -> Table:
    table = Table(title=title)
    table.add_column("measure")
    shown = runs if len(runs) <= CONSOLE_TASKS else []
    for r in shown:
        table.add_column(escape(r.task), justify="right")
    table.add_column("mean", justify="right", style="bold")
    if not shown:
        table.add_column("runs with a value", justify="right")
    means = summary(runs, keys)
    for key in keys:
        if shown:
            cells = [fmt(key, r.value(key)) if not r.error else "no report" for r in shown]
            cells.append(fmt(key, means[key]))
        else:
            cells = [fmt(key, means[key]), str(sum(r.value(key) is not None for r in runs))]
        table.add_row(label(key), *cells)
    return table


def comparison_table(comparison: dict[str, Any], names: tuple[str, str]) -> Table:
    a, b = names
    table = Table(title=f"{a} − {b}, paired by task ({len(comparison['tasks'])} tasks)")
    for column in ("measure", a, b, "Δ", "95% interval", "win/tie/loss"):
        table.add_column(escape(column), justify="left" if column == "measure" else "right")
    for row in comparison["metrics"]:
        key = row["key"]
        table.add_row(*_comparison_cells(key, row))
    return table


def _comparison_cells(key: str, row: dict[str, Any]) -> list[str]:
    interval = (
        "–"
        if row["low"] is None
        else f"[{fmt(key, row['low'], delta=True)}, {fmt(key, row['high'], delta=True)}]"
    )
    wtl = f"{row['wins']}/{row['ties']}/{row['losses']}" if better(key) else "–"
    return [
        label(key),
        fmt(key, row["mean_a"]),
        fmt(key, row["mean_b"]),
        fmt(key, row["delta"], delta=True),
        interval,
        wtl,
    ]


def print_tables(
    console: Console,
    sets: Sequence[tuple[str, Sequence[RunEval]]],
    comparison: dict[str, Any] | None,
) -> None:
    for name, runs in sets:
        console.print(runs_table(runs, metric_keys(runs), escape(name)))
        for r in runs:
            if r.error:
                console.print(f"[yellow]{escape(r.task)}[/]: {escape(r.error)}")
    if comparison is not None:
        console.print(comparison_table(comparison, (sets[0][0], sets[1][0])))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_report(
    sets: Sequence[tuple[str, Sequence[RunEval]]],
    comparison: dict[str, Any] | None,
    judge: dict[str, Any] | None,
) -> str:
    lines = ["# Report evaluation", ""]
    for name, runs in sets:
        keys = metric_keys(runs)
        means = summary(runs, keys)
        lines += [f"## {_md_escape(name)}", ""]
        lines.append("| measure | " + " | ".join(_md_escape(r.task) for r in runs) + " | mean |")
        lines.append("|---" * (len(runs) + 2) + "|")
        for key in keys:
            cells = [fmt(key, r.value(key)) if not r.error else "no report" for r in runs]
            lines.append(f"| {label(key)} | " + " | ".join(cells) + f" | {fmt(key, means[key])} |")
        lines.append("")
        for r in runs:
            where = f"`{r.run_dir}`"
            lines.append(f"- {_md_escape(r.task)}: {where}" + (f" — {r.error}" if r.error else ""))
            failed = r.details.get("failed_checks")
            if failed:
                lines.append(f"  - failed checks: {', '.join(failed)}")
        lines.append("")
    if comparison is not None:
        a, b = sets[0][0], sets[1][0]
        lines += [f"## {_md_escape(a)} − {_md_escape(b)}", ""]
        lines.append(
            f"Paired by task over {len(comparison['tasks'])} tasks "
            f"({', '.join(comparison['tasks']) or 'none'}); Δ = mean of the per-task "
            f"differences; paired bootstrap 95% interval, {comparison['resamples']} "
            f"resamples, seed {comparison['seed']}; win/tie/loss of {_md_escape(a)}."
        )
        for what, tasks in (("runs", "only_in_runs"), ("baseline", "only_in_baseline")):
            if comparison[tasks]:
                lines.append(f"Only in the {what}: {', '.join(comparison[tasks])}.")
        lines += ["", f"| measure | {a} | {b} | Δ | 95% interval | win/tie/loss |"]
        lines.append("|---|---|---|---|---|---|")
        for row in comparison["metrics"]:
            lines.append("| " + " | ".join(_comparison_cells(row["key"], row)) + " |")
        lines.append("")
    if judge is not None:
        lines += [
            "## Judge",
            "",
            f"Model `{judge['model']}`, rubric {judge['rubric_version']} "
            f"({judge['rubric_hash']}); {judge['calls']} calls, {judge['cache_hits']} "
            "results from the cache; every call in `judge/trace.jsonl`.",
            "",
        ]
    return "\n".join(lines)


# --- charts -----------------------------------------------------------------------------


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend with a CJK font, or None without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import font_manager
    except ImportError:
        return None
    for path in CJK_FONT_CANDIDATES:
        if os.path.exists(path):
            font_manager.fontManager.addfont(path)
            names = [f.name for f in font_manager.fontManager.ttflist if f.fname == path]
            name = next((n for n in names if n.endswith(" SC")), names[0] if names else None)
            if name:
                matplotlib.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            break
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False
    return plt


def _png(plt: Any, fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _chart_keys(runs: Sequence[RunEval]) -> list[str]:
    """Measures on a 0–1 scale (shares; judge scores divided by 100)."""
    return [k for k in metric_keys(runs) if kind(k) in ("share", "score")]


def _unit(key: str, value: float | None) -> float | None:
    if value is None:
        return None
    return value / 100 if kind(key) == "score" else value


def charts(
    sets: Sequence[tuple[str, Sequence[RunEval]]], comparison: dict[str, Any] | None
) -> list[tuple[str, str]]:
    """(title, PNG data URI) of each chart; empty without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return []
    import numpy as np

    out = []
    keys = _chart_keys([r for _, runs in sets for r in runs])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(keys) * len(sets)), 3.8))
    width = 0.8 / len(sets)
    for n, (name, runs) in enumerate(sets):
        values = [_unit(k, mean([r.value(k) for r in runs])) for k in keys]
        xs = np.arange(len(keys)) + n * width
        ax.bar(xs, [np.nan if v is None else v for v in values], width, label=name)
    ax.set_xticks(np.arange(len(keys)) + width * (len(sets) - 1) / 2)
    ax.set_xticklabels([label(k) for k in keys], rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean (share; judge score / 100)")
    ax.legend(fontsize="small")
    out.append(("Mean per measure", _png(plt, fig)))

    for name, runs in sets:
        done = [r for r in runs if not r.error]
        if not done:
            continue
        grid = np.array([[_good(k, _unit(k, r.value(k))) for k in keys] for r in done], dtype=float)
        fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(keys)), 0.5 * len(done) + 1.8))
        ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        for i, r in enumerate(done):
            for j, k in enumerate(keys):
                ax.text(j, i, fmt(k, r.value(k)), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([label(k) for k in keys], rotation=45, ha="right")
        ax.set_yticks(range(len(done)))
        ax.set_yticklabels([r.task for r in done])
        out.append((f"Per task: {name} (green is better)", _png(plt, fig)))

    if comparison is not None:
        rows = [r for r in comparison["metrics"] if r["key"] in keys and r["delta"] is not None]
        if rows:
            fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(rows) + 1.5))
            ys = np.arange(len(rows))
            deltas = [_unit(r["key"], r["delta"]) or 0.0 for r in rows]
            lows = [
                d - (_unit(r["key"], r["low"]) or 0.0) for d, r in zip(deltas, rows, strict=True)
            ]
            highs = [
                (_unit(r["key"], r["high"]) or 0.0) - d for d, r in zip(deltas, rows, strict=True)
            ]
            ax.errorbar(deltas, ys, xerr=[lows, highs], fmt="o", capsize=3)
            ax.axvline(0, color="grey", linewidth=0.8)
            ax.invert_yaxis()
            ax.set_yticks(ys)
            ax.set_yticklabels([label(r["key"]) for r in rows])
            ax.set_xlabel(f"{sets[0][0]} − {sets[1][0]} (share; judge score / 100), 95% interval")
            out.append(("Differences with paired bootstrap intervals", _png(plt, fig)))
    return out


def _good(key: str, value: float | None) -> float:
    """0 bad … 1 good for the heat map's colour (nan: no value, or no better direction)."""
    if value is None or better(key) is None:
        return math.nan
    return value if better(key) == "higher" else 1.0 - value


# --- HTML -------------------------------------------------------------------------------

_STYLE = """body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%}"""


def html_report(
    sets: Sequence[tuple[str, Sequence[RunEval]]],
    comparison: dict[str, Any] | None,
    judge: dict[str, Any] | None,
    images: Sequence[tuple[str, str]],
) -> str:
    """A self-contained page: the Markdown tables as HTML, and the charts."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown_report(sets, comparison, judge))
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="{uri}">'
        for title, uri in images
    )
    if not images:
        figures = (
            "<p>No charts: matplotlib is not installed (pip install 'deepfolder[analysis]').</p>"
        )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Report evaluation</title>'
        f"<style>{_STYLE}</style></head><body>{body}{figures}</body></html>\n"
    )
