"""End-to-end runs with fake models over the demo folder: every output file, parseable."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from deepfolder.cli import main
from deepfolder.llm.fake import FunctionModel, ScriptedModel, tool_call
from deepfolder.runner.request import RunSetupError, resolve_request
from deepfolder.runner.run import run_task
from deepfolder.settings import load_settings
from spine_fixtures import RUN_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


def tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def settings(tmp_path: Path, **over):  # type: ignore[no-untyped-def]
    data = {"cache_dir": str(tmp_path / "cache"), "retrieval": {"dense": False}}
    data.update(over)
    return load_settings(overrides=data, environ={})


def small_model(messages, tools):  # type: ignore[no-untyped-def]
    prompt = messages[-1]["content"]
    if "JSON" in prompt:
        return json.dumps({"queries": ["电子书借阅", "老年读者"]}, ensure_ascii=False)
    excerpts = re.findall(r"\[\d+\] （[^）]*）(.+)", prompt)
    return "".join(excerpts[:4]) or "没有材料。"


def test_pipeline_run_on_demo_writes_every_output(tmp_path: Path) -> None:
    before = tree_hash(DEMO)
    out = tmp_path / "run"
    result = run_task(
        DEMO, None, settings(tmp_path), out=out, model=FunctionModel(small_model, is_local=True)
    )
    assert tree_hash(DEMO) == before, "the input folder must never change"
    for name in RUN_OUTPUTS:
        assert (out / name).is_file(), name
    for line in (out / "trace.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line)
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert validation["passed"] == result.passed
    usage = json.loads((out / "usage.json").read_text(encoding="utf-8"))
    assert usage["total"]["input_tokens"] > 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## （4）参考资料" in report
    cited = set(re.findall(r"\(#(E[0-9a-f]{8})\)", report))
    evidence = {
        json.loads(line)["segment"]["id"]
        for line in (out / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert cited and cited <= evidence
    assert "社区图书馆调研报告.pdf, 第" in report  # a real page locator
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    turns = (out / "turns.txt").read_text(encoding="utf-8")
    assert "Task (pipeline policy)" in turns and "Validation (final)" in turns


def test_agent_run_reconstructs_prompts_from_trace(tmp_path: Path) -> None:
    def answer(messages, tools):  # type: ignore[no-untyped-def]
        ids = re.findall(r"\[(E[0-9a-f]{8})\]", messages[-1]["content"])
        return f"# 报告\n\n## （1）背景\n\n电子书借阅量增长69% [{ids[0]}]。\n"

    judge = '{"verdict": "supported", "reason": "the page states it"}'
    model = ScriptedModel(
        [tool_call("search", {"query": "电子书借阅量"}), answer, judge], name="fake:agent"
    )
    out = tmp_path / "run"
    run_task(
        DEMO,
        "写一段关于电子书借阅的总结，标注来源。",
        settings(tmp_path, validate={"max_revisions": 0}),
        out=out,
        model=model,
    )
    steps = [
        json.loads(line) for line in (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    calls = [s for s in steps if s["kind"] == "model_call"]
    # every prompt is in the trace exactly as sent
    assert [c["messages"] for c in calls] == [m for m, _, _ in model.calls]
    results = [s for s in steps if s["kind"] == "tool_result"]
    assert results and results[0]["evidence_ids"]
    assert model.remaining == 0
    assert calls[-1]["purpose"] == "support judge"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "社区图书馆调研报告.pdf, 第2页" in report
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert validation["support"][0]["verdict"] == "supported"


def test_request_sources_and_errors(tmp_path: Path) -> None:
    case = tmp_path / "cases" / "007"
    case.mkdir(parents=True)
    (tmp_path / "cases" / "query.jsonl").write_text(
        json.dumps({"task": "007", "query": "写报告"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert resolve_request(case, None)[0] == "写报告"
    (case / "query.txt").write_text("来自文件", encoding="utf-8")
    assert resolve_request(case, None)[0] == "来自文件"
    assert resolve_request(case, "命令行")[0] == "命令行"
    with pytest.raises(RunSetupError, match=r"query\.txt"):
        resolve_request(tmp_path, None)
    with pytest.raises(RunSetupError, match="inside the input folder"):
        run_task(case, "x", settings(tmp_path), out=case / "runs")


def test_cli_help_and_bad_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for command in ("run", "ingest", "search", "check", "eval"):
        assert command in text
    assert main(["run", str(tmp_path / "missing"), "x"]) == 2


def test_check_command_on_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    run_task(
        DEMO, None, settings(tmp_path), out=out, model=FunctionModel(small_model, is_local=True)
    )
    first = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    code = main(["check", str(out)])
    again = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert code == (0 if first["passed"] else 1)
    assert again["passed"] == first["passed"]
    # a citation whose label no longer matches its evidence is caught
    report = (out / "report.md").read_text(encoding="utf-8")
    (out / "report.md").write_text(
        re.sub(r"第(\d)页\]", "第9页]", report, count=1), encoding="utf-8"
    )
    assert main(["check", str(out)]) == 1
    assert main(["check", str(tmp_path / "nowhere")]) == 2


CASE_009 = ROOT.parent / "shared" / "data" / "cases" / "009"


@pytest.mark.data
@pytest.mark.skipif(not CASE_009.is_dir(), reason="../shared/data/cases/009 is absent")
def test_pipeline_analyses_tables_when_charts_are_requested(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_task(
        CASE_009,
        None,
        settings(tmp_path, validate={"max_revisions": 0}),
        out=out,
        model=FunctionModel(small_model, is_local=True),
    )
    report = (out / "report.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", report)
    assert len(images) >= 2 and all((out / i).is_file() for i in images)
    trace = [
        json.loads(line) for line in (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert any(s["kind"] == "tool_call" and s["name"] == "run_python" for s in trace)
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert next(c for c in validation["checks"] if c["name"] == "figures")["passed"] is True


def test_ingest_and_search_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--no-dense", "--cache-dir", str(tmp_path / "cache")]
    assert main(["ingest", str(DEMO), *common]) == 0
    assert main(["search", str(DEMO), "电子书借阅量", "-k", "2", *common]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\[E[0-9a-f]{8}\] 社区图书馆调研报告\.pdf, 第2页", out)
    assert "[status:" in out


def test_missing_api_key_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("DEEPFOLDER_API_KEY", raising=False)
    out = tmp_path / "run"
    code = main(
        [
            "run",
            str(DEMO),
            "x",
            "--model",
            "openai:gpt-4o-mini",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "cache").exists()
