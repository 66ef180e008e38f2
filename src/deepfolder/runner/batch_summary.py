"""A batch's summary: one row per task from its run directory's ``validation.json`` and
``usage.json``, the totals, written as ``summary.md``, ``summary.csv`` and
``summary.json`` and shown as a table.

A task without those files (failed before its report, timed out) still gets its row,
with what is known: its state, the reason, and the tokens its trace had used when
``usage.json`` was written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import JustifyMethod
from rich.table import Table

from deepfolder.runner.outputs import write_json, write_text

if TYPE_CHECKING:
    from deepfolder.runner.batch_tasks import Batch, TaskState

COLUMNS = [
    "task",
    "state",
    "passed",
    "length",
    "length_asked",
    "sections",
    "citations_resolving",
    "citations_total",
    "supported",
    "weak",
    "unsupported",
    "input_tokens",
    "output_tokens",
    "cost",
    "wall_s",
    "attempts",
    "reason",
    "run_dir",
]
"""The fields of summary.csv, one row per task and a total row."""


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def task_row(task: TaskState, batch_dir: Path) -> dict[str, Any]:
    """What the task's run directory says about its report."""
    run_dir = Path(task.run_dir)
    validation = _read(run_dir / "validation.json")
    usage = _read(run_dir / "usage.json").get("total") or {}
    checks = {c.get("name"): c for c in validation.get("checks") or [] if isinstance(c, dict)}
    length = checks.get("length") or {}
    sections = checks.get("sections") or {}
    citations = [c for c in validation.get("citations") or [] if c.get("kind") != "reference"]
    verdicts = [v.get("verdict") for v in validation.get("support") or []]
    try:
        relative = str(run_dir.relative_to(batch_dir))
    except ValueError:
        relative = str(run_dir)
    return {
        "task": task.task,
        "state": task.state,
        "passed": validation.get("passed") if validation else None,
        "failures": validation.get("failures") or [],
        "length": length.get("measured"),
        "length_asked": length.get("expected"),
        "sections": sections.get("measured"),
        "citations_resolving": (
            sum(bool(c.get("resolved_to")) and not c.get("unresolved_ids") for c in citations)
            if validation
            else None
        ),
        "citations_total": len(citations) if validation else None,
        "supported": verdicts.count("supported") if validation else None,
        "weak": verdicts.count("weak") if validation else None,
        "unsupported": verdicts.count("unsupported") if validation else None,
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cost": usage.get("cost"),
        "wall_s": task.wall_s,
        "attempts": task.attempts,
        "reason": task.reason,
        "run_dir": relative,
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def total(key: str) -> int | float:
        return sum(r[key] or 0 for r in rows)

    costs = [r["cost"] for r in rows if r["input_tokens"]]
    states = {
        s: sum(r["state"] == s for r in rows) for s in dict.fromkeys(r["state"] for r in rows)
    }
    return {
        "tasks": len(rows),
        "states": states,
        "validation_passed": sum(r["passed"] is True for r in rows),
        "citations_resolving": total("citations_resolving"),
        "citations_total": total("citations_total"),
        "supported": total("supported"),
        "weak": total("weak"),
        "unsupported": total("unsupported"),
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        # unknown when any task that used the model has no price
        "cost": None if any(c is None for c in costs) else round(sum(costs), 6),
        "wall_s": round(total("wall_s"), 2),
    }


def summarize(batch: Batch) -> Table:
    """Write the summary files of ``batch`` and return its table."""
    rows = [task_row(t, batch.dir) for t in batch.tasks]
    sums = totals(rows)
    head = {
        "batch_dir": str(batch.dir),
        "cases_dir": batch.cases_dir,
        "model": batch.model,
        "settings_hash": batch.settings_hash,
        "started_at": batch.started_at,
        "ended_at": batch.ended_at,
        "resumes": len(batch.resumes),
    }
    write_json(batch.dir / "summary.json", {"batch": head, "tasks": rows, "totals": sums})
    write_text(batch.dir / "summary.csv", _csv(rows, sums))
    write_text(batch.dir / "summary.md", _markdown(head, rows, sums))
    return _table(rows, sums)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "cost":
        return f"{value:.4f}"
    if key == "wall_s":
        return f"{value:.1f}"
    return str(value)


def _pair(a: Any, b: Any) -> str:
    return "–" if a is None and b is None else f"{_cell('', a) or '?'}/{_cell('', b) or '?'}"


DISPLAY = [
    "task",
    "state",
    "checks",
    "length / asked",
    "sections",
    "citations ok/all",
    "support s/w/u",
    "tokens in/out",
    "cost $",
    "wall s",
]
"""The columns of the printed table and of summary.md (the CSV has every field apart)."""


def _display(row: dict[str, Any]) -> list[str]:
    passed = row["passed"]
    support = (
        "–"
        if row["supported"] is None
        else f"{row['supported']}/{row['weak']}/{row['unsupported']}"
    )
    return [
        row["task"],
        row["state"],
        "–" if passed is None else "passed" if passed else "FAILED",
        "–" if not row["length"] else f"{row['length']} / {row['length_asked']}",
        (row["sections"] or "–").removesuffix(" present"),
        _pair(row["citations_resolving"], row["citations_total"]),
        support,
        _pair(row["input_tokens"], row["output_tokens"]),
        _cell("cost", row["cost"]) or "–",
        _cell("wall_s", row["wall_s"]),
    ]


def _display_totals(sums: dict[str, Any]) -> list[str]:
    return [
        "total",
        ", ".join(f"{n} {s}" for s, n in sums["states"].items()),
        f"{sums['validation_passed']}/{sums['tasks']}",
        "",
        "",
        f"{sums['citations_resolving']}/{sums['citations_total']}",
        f"{sums['supported']}/{sums['weak']}/{sums['unsupported']}",
        f"{sums['input_tokens']}/{sums['output_tokens']}",
        _cell("cost", sums["cost"]) or "unknown",
        _cell("wall_s", sums["wall_s"]),
    ]


def _csv(rows: list[dict[str, Any]], sums: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row[key] is None else row[key] for key in COLUMNS])
    total = {key: sums.get(key, "") for key in COLUMNS}
    total.update(
        task="total",
        state="; ".join(f"{n} {s}" for s, n in sums["states"].items()),
        passed=f"{sums['validation_passed']}/{sums['tasks']}",
    )
    writer.writerow(["" if total[key] is None else total[key] for key in COLUMNS])
    return out.getvalue()


def _markdown(head: dict[str, Any], rows: list[dict[str, Any]], sums: dict[str, Any]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    lines = [
        "# deepfolder batch",
        "",
        f"- cases: `{head['cases_dir']}`",
        f"- model: `{head['model']}` (settings {head['settings_hash']})",
        f"- started {head['started_at']}, ended {head['ended_at'] or '(not finished)'}"
        + (f", resumed {head['resumes']} time(s)" if head["resumes"] else ""),
        "",
        line(DISPLAY),
        "|" + "---|" * len(DISPLAY),
        *(line(_display(row)) for row in rows),
        line([f"**{c}**" if c else "" for c in _display_totals(sums)]),
    ]
    problems = [r for r in rows if r["reason"] or r["failures"]]
    if problems:
        lines += ["", "## Problems", ""]
        for row in problems:
            for text in ([row["reason"]] if row["reason"] else []) + row["failures"]:
                lines.append(f"- {row['task']}: {text}")
    return "\n".join(lines) + "\n"


def _table(rows: list[dict[str, Any]], sums: dict[str, Any]) -> Table:
    cells = [_display(row) for row in rows]
    total = _display_totals(sums)
    table = Table(title="deepfolder batch", box=box.SIMPLE_HEAD, pad_edge=False)
    for n, title in enumerate(DISPLAY):
        width = max(cell_len(line[n]) for line in [*cells, total])  # headers wrap, cells not
        justify: JustifyMethod = "left" if n < 2 else "right"
        table.add_column(title, justify=justify, min_width=width)
    for row, line in zip(rows, cells, strict=True):
        style = {"done": None, "failed": "red", "timed_out": "yellow"}.get(row["state"], "dim")
        table.add_row(*line, style=style)
    table.add_section()
    table.add_row(*total, style="bold")
    return table
