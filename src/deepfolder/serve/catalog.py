"""The run and batch directories the viewer knows, and what their files say.

A directory is a run when it holds ``run.json``, ``report.md`` or ``trace.jsonl``; a
batch when it holds ``batch.json`` (its ``runs/*`` are runs too). Each root given on the
command line may itself be a run or a batch, or hold them one or two levels down.

A run is known by a short id derived from its resolved path, and every later request
names that id, never a path. Reading is forgiving: a missing file or broken JSON
becomes a problem on the run's card (``RunCard.problems``), so one bad directory never
breaks the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.records import Evidence, Segment, Source, short_hash
from deepfolder.runner.batch_summary import COLUMNS as BATCH_COLUMNS

RUN_MARKERS = ("run.json", "report.md", "trace.jsonl")
SCAN_DEPTH = 2
"""How many directory levels below a root are searched for runs and batches."""
BATCH_TABLE_COLUMNS = [c for c in BATCH_COLUMNS if c != "run_dir"]


class RunFileError(Exception):
    """A run file is missing or not what it should be; the message names the file."""


def path_id(path: Path) -> str:
    return short_hash(str(path.resolve()), length=10)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path.name} cannot be read: {exc}") from None
    except ValueError as exc:
        raise RunFileError(f"{path.name} is not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a broken last line (a run still writing) is
    skipped, a broken line elsewhere raises."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RunFileError(f"{path.name} is missing") from None
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if n == len(lines):
                break
            raise RunFileError(f"{path.name} line {n} is not valid JSON") from None
    return records


@dataclass
class RunCard:
    """One row of the runs page."""

    id: str
    name: str
    path: str
    status: str = ""
    request: str = ""
    started: str = ""
    model: str = ""
    passed: bool | None = None
    failures: int = 0
    length: str = ""
    citations: str = ""
    cost: float | None = None
    batch: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class RunDir:
    id: str
    path: Path
    batch: str | None = None
    _evidence: dict[str, Evidence] | None = None
    _evidence_mtime: float = -1.0

    def file(self, name: str) -> Path:
        return self.path / name

    def json(self, name: str) -> Any:
        return read_json(self.path / name)

    def text(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunFileError(f"{name} is missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RunFileError(f"{name} cannot be read: {exc}") from None

    def record(self) -> dict[str, Any]:
        data = self.json("run.json")
        if not isinstance(data, dict):
            raise RunFileError("run.json is not a JSON object")
        return data

    def folder(self) -> Path | None:
        """The input folder the run names in ``run.json``."""
        try:
            folder = self.record().get("folder")
        except RunFileError:
            return None
        return Path(folder) if isinstance(folder, str) and folder else None

    def evidence(self) -> dict[str, Evidence]:
        """Every evidence record of the run by id (re-read when the file changes)."""
        path = self.path / "evidence.jsonl"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise RunFileError("evidence.jsonl is missing") from None
        if self._evidence is None or mtime != self._evidence_mtime:
            found = {}
            for n, rec in enumerate(read_jsonl(path), 1):
                try:
                    ev = Evidence(
                        Segment.from_dict(rec["segment"]), Source.from_dict(rec["source"])
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise RunFileError(
                        f"evidence.jsonl line {n} is not an evidence record ({exc})"
                    ) from None
                found[ev.id] = ev
            self._evidence, self._evidence_mtime = found, mtime
        return self._evidence

    def card(self) -> RunCard:
        card = RunCard(self.id, self.path.name, str(self.path), batch=self.batch)

        def attempt(what: str, fill: Any) -> None:
            try:
                fill()
            except RunFileError as exc:
                card.problems.append(str(exc))
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                card.problems.append(f"{what} is not in the expected form ({exc})")

        def run_record() -> None:
            record = self.record()
            card.status = str(record.get("status") or "")
            card.started = str(record.get("started_at") or "")

        def request() -> None:
            card.request = self.text("request.txt").strip()

        def usage() -> None:
            data = self.json("usage.json")
            card.model = ", ".join(data.get("models") or {})
            card.cost = (data.get("total") or {}).get("cost")

        def validation() -> None:
            data = self.json("validation.json")
            card.passed = bool(data.get("passed"))
            card.failures = len(data.get("failures") or [])
            checks = {c.get("name"): c for c in data.get("checks") or []}
            length = checks.get("length") or {}
            if length:
                card.length = f"{length.get('measured', '')} (asked {length.get('expected', '')})"
            card.citations = str((checks.get("citations") or {}).get("measured") or "")
            support = (checks.get("support") or {}).get("measured")
            if support:
                card.citations += f"; {support}"

        attempt("run.json", run_record)
        attempt("request.txt", request)
        finished = card.status in ("", "finished")
        if finished and not (self.path / "report.md").is_file():
            card.problems.append("report.md is missing")
        if finished or (self.path / "usage.json").exists():
            attempt("usage.json", usage)
        if finished or (self.path / "validation.json").exists():
            attempt("validation.json", validation)
        return card


@dataclass
class BatchDir:
    id: str
    path: Path
    runs: list[str] = field(default_factory=list)

    def summary(self) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
        """The task rows and totals of ``summary.json`` (or of ``batch.json`` while the
        batch has no summary yet), and the problems met reading them."""
        try:
            data = read_json(self.path / "summary.json")
            return list(data.get("tasks") or []), dict(data.get("totals") or {}), []
        except RunFileError as first:
            try:
                batch = read_json(self.path / "batch.json")
                tasks = batch.get("tasks") or {}
                items = tasks.values() if isinstance(tasks, dict) else tasks
                rows = [
                    {"task": t.get("task"), "state": t.get("state"), "reason": t.get("reason")}
                    for t in items
                    if isinstance(t, dict)
                ]
                return rows, {}, [str(first)]
            except (RunFileError, AttributeError) as exc:
                return [], {}, [str(first), str(exc)]


class Catalog:
    """The runs and batches under the roots, re-scanned on demand."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [r.resolve() for r in roots]
        self.runs: dict[str, RunDir] = {}
        self.batches: dict[str, BatchDir] = {}
        self.scan()

    def scan(self) -> None:
        runs: dict[str, RunDir] = {}
        batches: dict[str, BatchDir] = {}

        def add_run(path: Path, batch: str | None = None) -> None:
            rid = path_id(path)
            known = self.runs.get(rid)
            runs[rid] = known if known is not None else RunDir(rid, path.resolve(), batch)
            runs[rid].batch = batch

        def visit(path: Path, depth: int) -> None:
            if (path / "batch.json").is_file():
                bid = path_id(path)
                batch = BatchDir(bid, path.resolve())
                batches[bid] = batch
                for run in sorted((path / "runs").glob("*")):
                    if run.is_dir():
                        add_run(run, bid)
                        batch.runs.append(path_id(run))
                return
            if any((path / m).exists() for m in RUN_MARKERS):
                add_run(path)
                return
            if depth >= SCAN_DEPTH:
                return
            try:
                children = sorted(p for p in path.iterdir() if p.is_dir())
            except OSError:
                return
            for child in children:
                visit(child, depth + 1)

        for root in self.roots:
            if root.is_dir():
                visit(root, 0)
        # runs started from the page stay known even before their first file exists
        for rid, run in self.runs.items():
            runs.setdefault(rid, run)
        self.runs, self.batches = runs, batches

    def add(self, path: Path) -> RunDir:
        rid = path_id(path)
        self.runs.setdefault(rid, RunDir(rid, path.resolve()))
        return self.runs[rid]

    def run(self, run_id: str) -> RunDir:
        if run_id not in self.runs:
            self.scan()
        return self.runs[run_id]

    def cards(self) -> list[RunCard]:
        """Every run's card, newest first."""
        cards = [run.card() for run in self.runs.values()]
        return sorted(cards, key=lambda c: (c.started, c.path), reverse=True)
