"""How an ingested folder is described: to the model (``folder_summary``) and to the
user (``format_ingest_table``)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from deepfolder.ingest.base import IngestReport
from deepfolder.records import format_seconds

if TYPE_CHECKING:
    from rich.table import Table

    from deepfolder.ingest.worker import FileOutcome

TITLES_SHOWN = 3


def describe_outcome(kind: str, outcome: FileOutcome) -> dict[str, Any]:
    """The facts about one file the folder summary shows (JSON-safe)."""
    sources = outcome.sources
    info: dict[str, Any] = {}
    if kind == "collection":
        info["articles"] = len(sources)
        info["titles"] = [s.title for s in sources if s.title][:TITLES_SHOWN]
        return info
    if kind == "zip":
        info["members"] = len({s.path for s in sources})
        return info
    if not sources:
        return info
    meta = sources[0].meta
    for key in ("pages", "slides", "rows", "duration", "duration_s", "width", "height"):
        if key in meta:
            info[key] = meta[key]
    if isinstance(meta.get("sheets"), dict) and len(meta["sheets"]) > 0:
        info["sheets"] = {
            name: [v.get("rows", 0), v.get("columns", 0)] for name, v in meta["sheets"].items()
        }
    if sources[0].title and sources[0].title != sources[0].display_name:
        info["title"] = sources[0].title
    return info


def _file_line(rel: str, info: dict[str, Any]) -> str:
    kind = info.get("kind", "?")
    facts: list[str] = []
    if "pages" in info:
        facts.append(f"{info['pages']} pages")
    if "slides" in info:
        facts.append(f"{info['slides']} slides")
    sheets = info.get("sheets")
    if sheets:
        for name, (rows, cols) in list(sheets.items())[:3]:
            label = f"sheet {name}: " if name else ""
            facts.append(f"{label}{rows} rows × {cols} columns")
    duration = info.get("duration", info.get("duration_s"))
    if isinstance(duration, int | float):
        facts.append(format_seconds(float(duration)))
    if "articles" in info:
        facts.append(f"{info['articles']} articles")
    if "members" in info:
        facts.append(f"{info['members']} members")
    line = f"- {rel} ({kind}{', ' + ', '.join(facts) if facts else ''})"
    if info.get("title"):
        line += f': "{info["title"]}"'
    if info.get("titles"):
        line += " e.g. " + "; ".join(f'"{t[:40]}"' for t in info["titles"])
    return line


def folder_summary(
    name: str, files: dict[str, dict[str, Any]], report: IngestReport, max_chars: int = 2000
) -> str:
    """Files by kind with their size in pages/slides/rows/time, collections with article
    counts and a few titles, then failures; cut to ``max_chars`` keeping the failures."""
    kinds = Counter(info.get("kind", "?") for info in files.values())
    head = f'Folder "{name}": {len(report.files)} files'
    if kinds:
        head += " (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")"
    failures = [f"- {f.path}: not readable ({f.reason[:150]})" for f in report.failures]
    ordered = sorted(files.items(), key=lambda item: (item[1].get("kind") == "collection", item[0]))
    lines = [_file_line(rel, info) for rel, info in ordered]
    tail = (["Files that could not be read:", *failures]) if failures else []
    body: list[str] = [head]
    budget = max_chars - sum(len(t) + 1 for t in tail) - len(head) - 1
    for i, line in enumerate(lines):
        if len(line) + 1 > budget:
            body.append(f"- … and {len(lines) - i} more files")
            break
        body.append(line)
        budget -= len(line) + 1
    text = "\n".join(body + tail)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def format_ingest_table(report: IngestReport) -> Table:
    """A rich table of the ingest: files by kind, segments, failures, time per phase."""
    from rich.table import Table

    by_kind: dict[str, list[int]] = {}
    for f in report.files:
        counts = by_kind.setdefault(f.kind, [0, 0, 0, 0])  # files, indexed, cached, failed
        counts[0] += 1
        counts[{"indexed": 1, "cached": 2}.get(f.status, 3)] += f.status != "skipped"
    segments = Counter[str]()
    for f in report.files:
        segments[f.kind] += f.segments
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items())
    caption = "\n".join([timing, *report.notes] if timing else report.notes)
    table = Table(title=f"Ingest of {report.folder}", caption=caption or None)
    for column in ("kind", "files", "new", "cached", "failed", "segments"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, (n, new, cached, failed) in sorted(by_kind.items()):
        table.add_row(
            kind,
            str(n),
            str(new),
            str(cached),
            f"[red]{failed}[/red]" if failed else "0",
            str(segments[kind]),
        )
    for f in report.failures:
        table.add_row(f"[red]✗ {f.path}[/red]", "", "", "", "", f.reason[:120])
    for f in report.files:
        if f.status == "skipped":
            table.add_row(f"[yellow]– {f.path}[/yellow]", "", "", "", "", f.reason[:120])
    return table
