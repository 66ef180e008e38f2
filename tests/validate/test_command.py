from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from deepfolder.records import Evidence
from deepfolder.settings import Settings
from deepfolder.validate.command import CheckError, check_run_dir, load_evidence, write_evidence

from .reports import REQUEST, good_report


def _run_dir(tmp_path: Path, evidence: dict[str, Evidence], seen: set[str], report: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.md").write_text(report, encoding="utf-8")
    (run / "request.txt").write_text(REQUEST, encoding="utf-8")
    (run / "settings.json").write_text(json.dumps(Settings().to_json_dict()), encoding="utf-8")
    write_evidence(run / "evidence.jsonl", list(evidence.values()), seen)
    return run


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def test_evidence_round_trip(tmp_path: Path, evidence, seen) -> None:
    path = tmp_path / "evidence.jsonl"
    write_evidence(path, list(evidence.values()), seen)
    loaded, loaded_seen = load_evidence(path)
    assert loaded == {ev.id: ev for ev in evidence.values()}
    assert loaded_seen == seen
    path.write_text('{"segment": {}}\n', encoding="utf-8")
    with pytest.raises(CheckError, match="line 1"):
        load_evidence(path)


def test_check_run_dir_passes_and_writes_json(tmp_path: Path, evidence, seen) -> None:
    run = _run_dir(tmp_path, evidence, seen, good_report(evidence))
    console, buf = _console()
    report, code = check_run_dir(run, console=console)
    assert code == 0 and report.passed
    data = json.loads((run / "validation.json").read_text(encoding="utf-8"))
    assert data["passed"] is True and len(data["support"]) == 4
    out = buf.getvalue()
    assert "citations" in out and "pass" in out and "validation passed" in out


def test_check_run_dir_fails_on_unseen_citation(tmp_path: Path, evidence, seen) -> None:
    text = good_report(evidence).replace(evidence["pdf5"].id, evidence["unseen"].id, 1)
    run = _run_dir(tmp_path, evidence, seen, text)
    console, buf = _console()
    report, code = check_run_dir(run, console=console)
    assert code == 1 and not report.passed
    assert f"[{evidence['unseen'].id}]" in buf.getvalue()  # ids are printed, not eaten as markup
    assert json.loads((run / "validation.json").read_text(encoding="utf-8"))["passed"] is False


def test_bare_report_file(tmp_path: Path, evidence) -> None:
    path = tmp_path / "mine.md"
    path.write_text(good_report(evidence), encoding="utf-8")
    with pytest.raises(CheckError, match="--request"):
        check_run_dir(path, console=_console()[0])
    report, code = check_run_dir(path, REQUEST, console=_console()[0])
    assert code == 0
    assert report.check("citations").passed is None  # type: ignore[union-attr]
    assert (tmp_path / "validation.json").is_file()
