"""``deepfolder check RUN_DIR [--request "…"]``: re-validate a finished report.

A run directory holds ``report.md`` (and/or ``report.html``), ``request.txt``,
``settings.json`` and ``evidence.jsonl`` — one evidence per line as
``{"segment": Segment.to_dict(), "source": Source.to_dict(), "seen": bool}``. A bare
report file can be checked too, with ``--request``; its citations can then be checked
for form only. ``validation.json`` is written next to the report.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deepfolder.records import Evidence, Segment, Source
from deepfolder.request_model import parse_request
from deepfolder.settings import Settings
from deepfolder.validate.checks import Resolver, ValidationReport, validate_report


class CheckError(ValueError):
    """The run directory or report cannot be checked (missing files, bad JSON)."""


def load_evidence(path: Path) -> tuple[dict[str, Evidence], set[str]]:
    """Evidence by id and the ids seen by the model, from an ``evidence.jsonl``."""
    evidence: dict[str, Evidence] = {}
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                ev = Evidence(Segment.from_dict(data["segment"]), Source.from_dict(data["source"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CheckError(
                    f"{path}, line {n}: not an evidence record ({exc}); each line must be "
                    '{"segment": {...}, "source": {...}, "seen": true|false}'
                ) from exc
            evidence[ev.id] = ev
            if data.get("seen", True):
                seen.add(ev.id)
    return evidence, seen


def write_evidence(path: Path, evidence: list[Evidence], seen: set[str]) -> None:
    """The inverse of :func:`load_evidence` (used by the run and by tests)."""
    with path.open("w", encoding="utf-8") as fh:
        for ev in evidence:
            record = {
                "segment": ev.segment.to_dict(),
                "source": ev.source.to_dict(),
                "seen": ev.id in seen,
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def _pick_report(run_dir: Path, want_html: bool) -> Path:
    names = ("report.html", "report.md") if want_html else ("report.md", "report.html")
    for name in names:
        if (run_dir / name).is_file():
            return run_dir / name
    raise CheckError(f"{run_dir} has no report.md or report.html; is it a run directory?")


def check_run_dir(
    path: Path,
    request: str | None = None,
    *,
    resolve: Resolver | None = None,
    seen_ids: set[str] | None = None,
    console: Console | None = None,
) -> tuple[ValidationReport, int]:
    """Validate a run directory (or a bare report file), print the table, write
    ``validation.json`` beside the report. Returns (report, exit code: 0 pass, 1 fail)."""
    path = Path(path)
    settings = Settings.model_validate({})
    run_dir: Path | None = None
    if path.is_dir():
        run_dir = path
        if request is None:
            req_file = path / "request.txt"
            if not req_file.is_file():
                raise CheckError(f"{path} has no request.txt; pass the request with --request")
            request = req_file.read_text(encoding="utf-8")
        if (path / "settings.json").is_file():
            try:
                data = json.loads((path / "settings.json").read_text(encoding="utf-8"))
                # a run directory's settings.json wraps the settings with their hashes
                settings = Settings.model_validate(data.get("settings", data))
            except (json.JSONDecodeError, ValueError) as exc:
                raise CheckError(f"{path / 'settings.json'} is not valid settings: {exc}") from exc
        if resolve is None and (path / "evidence.jsonl").is_file():
            evidence, seen = load_evidence(path / "evidence.jsonl")
            resolve = evidence.get
            seen_ids = seen if seen_ids is None else seen_ids
    elif path.is_file():
        if request is None:
            raise CheckError(f'{path} is a bare report: pass the request with --request "…"')
        run_dir = path.parent
    else:
        raise CheckError(f"{path} does not exist")
    constraints = parse_request(request)
    report_path = _pick_report(path, constraints.format == "html") if path.is_dir() else path
    text = report_path.read_text(encoding="utf-8")
    result = validate_report(
        text, constraints, resolve=resolve, seen_ids=seen_ids, run_dir=run_dir, settings=settings
    )
    out = report_path.parent / "validation.json"
    out.write_text(
        json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    console = console or Console()
    print_validation_table(result, console, title=escape(str(report_path)))
    console.print(f"validation written to {escape(str(out))}")
    return result, 0 if result.passed else 1


def print_validation_table(
    report: ValidationReport, console: Console, title: str | None = None
) -> None:
    table = Table(title=title, show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("measured")
    table.add_column("expected")
    table.add_column("details", overflow="fold")
    for c in report.checks:
        if c.passed is None:
            mark = "[dim]n/a[/dim]"
        elif c.passed:
            mark = "[green]pass[/green]"
        elif c.failed:
            mark = "[red]FAIL[/red]"
        else:
            mark = "[yellow]warn[/yellow]"
        details = "; ".join(c.details[:3]) + (
            f" (+{len(c.details) - 3} more)" if len(c.details) > 3 else ""
        )
        table.add_row(
            c.name,
            mark,
            escape(str(c.measured or "")),
            escape(str(c.expected or "")),
            escape(details),
        )
    console.print(table)
    if report.passed:
        console.print("validation [green]passed[/green]: 0 failing check(s)")
        return
    names = ", ".join(c.name for c in report.checks if c.failed)
    console.print(
        f"validation [bold red]FAILED[/bold red]: {len(report.failures)} failing check(s) ({names})"
    )
