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
from injection_fixtures import (
    INJECTION_PAGES,
    PAYLOADS,
    STANDING_RULE,
    GullibleAgent,
    outside_material,
)
from openai_server import FakeOpenAIServer, completion
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
    assert re.search(
        r"\[E[0-9a-f]{8}\] 社区图书馆调研报告\.pdf, 第2页 \(score [0-9.]+\)\n<material", out
    )
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


# --- endpoint faults and prompt injection, end to end ---------------------------------


def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from deepfolder.llm.openai_compat import OpenAIChatModel

    monkeypatch.setattr(OpenAIChatModel, "_backoff", lambda self, attempt, retry_after: 0.01)
    monkeypatch.setenv("DEEPFOLDER_ALLOW_MODEL_REQUESTS", "1")  # the server is on 127.0.0.1


def _cli_run(tmp_path: Path, out: Path, *extra: str, config: dict | None = None) -> int:  # type: ignore[type-arg]
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config or {"validate": {"max_revisions": 0}}), encoding="utf-8")
    args = ["run", str(DEMO), "写一段关于电子书借阅的总结，标注来源。", "--out", str(out)]
    common = ["--config", str(cfg), "--cache-dir", str(tmp_path / "cache"), "--no-dense"]
    return main([*args, *common, *extra])


def _trace(out: Path) -> list[dict]:  # type: ignore[type-arg]
    lines = (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.reliability
def test_malformed_replies_mid_run_are_retried_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_wait(monkeypatch)
    no_message = completion("x")
    del no_message["choices"][0]["message"]
    object_arguments = completion(
        None,
        tool_calls=[
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "search", "arguments": {"query": "电子书借阅量"}},
            },
            {"id": "c2", "type": "function", "function": {"name": None, "arguments": "{}"}},
        ],
        finish_reason="tool_calls",
    )
    script = [
        ("raw", 200, "<html>upstream error</html>"),
        (200, object_arguments, {}),
        (200, no_message, {}),
        ("raw", 200, '{"choices": [{"message": {"content": "2024年'),
        (200, completion("# 总结\n\n2024年电子书借阅量为8.6万册次。"), {}),
    ]
    out = tmp_path / "run"
    with FakeOpenAIServer(script) as server:
        code = _cli_run(tmp_path, out, "--model", "vllm:test-model", "--base-url", server.base_url)
    assert code == 0
    assert "8.6万" in (out / "report.md").read_text(encoding="utf-8")
    steps = _trace(out)
    retries = [s for s in steps if s["kind"] == "retry"]
    assert [(r["turn"], r["attempt"], r["status"]) for r in retries] == [
        (1, 1, 200),
        (2, 1, 200),
        (2, 2, 200),
    ]
    assert all(r["reason"].startswith("malformed reply") and r["wait_s"] > 0 for r in retries)
    results = [s for s in steps if s["kind"] == "tool_result"]
    assert not results[0]["is_error"] and results[0]["evidence_ids"]  # object arguments work
    assert results[1]["is_error"] and "no tool name" in results[1]["content"]
    turns = (out / "turns.txt").read_text(encoding="utf-8")
    assert turns.count("retry ") == 3 and "malformed reply" in turns
    usage = json.loads((out / "usage.json").read_text(encoding="utf-8"))
    assert usage["total"]["retries"] == 3
    assert usage["models"]["vllm:test-model"]["retries"] == 3


@pytest.mark.reliability
def test_endpoint_that_never_recovers_is_a_model_error_with_the_trace_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_wait(monkeypatch)
    out = tmp_path / "run"
    config = {"model": {"max_retries": 2}, "validate": {"max_revisions": 0}}
    with FakeOpenAIServer([("raw", 200, '{"id": "cut')] * 3) as server:
        code = _cli_run(
            tmp_path,
            out,
            "--model",
            "vllm:test-model",
            "--base-url",
            server.base_url,
            config=config,
        )
        assert len(server.requests) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert code == 3
    assert "model error:" in err and "malformed reply" in err and "cut off" in err
    assert f"the trace is kept in {out}" in err.replace("\n", "")
    assert not (out / "report.md").exists()
    assert [s["attempt"] for s in _trace(out) if s["kind"] == "retry"] == [1, 2]
    usage = json.loads((out / "usage.json").read_text(encoding="utf-8"))
    assert usage["total"]["retries"] == 2
    assert "Run failed" in (out / "turns.txt").read_text(encoding="utf-8")


@pytest.mark.reliability
def test_empty_final_answer_fails_the_run_without_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "deepfolder.llm.registry.create_chat_model", lambda s: ScriptedModel(["", " "])
    )
    out = tmp_path / "run"
    code = _cli_run(tmp_path, out)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 3
    assert "final answer was empty" in err and "nothing twice" in err
    assert not (out / "report.md").exists()
    finals = [s for s in _trace(out) if s["kind"] == "final_answer"]
    assert finals and finals[-1]["text"] == ""

    # a run cut short by the turn limit whose forced answer is empty fails the same way
    result = run_task(
        DEMO,
        "x",
        settings(tmp_path, agent={"max_turns": 1}, validate={"max_revisions": 0}),
        out=tmp_path / "run2",
        model=ScriptedModel([tool_call("search", {"query": "图书馆"}), ""], name="fake:cut"),
    )
    assert not result.passed and result.error and "turn limit reached" in result.error
    assert not (tmp_path / "run2" / "report.md").exists()


@pytest.mark.reliability
def test_injection_pages_in_a_collection_do_not_steer_the_agent(tmp_path: Path) -> None:
    folder = tmp_path / "case"
    folder.mkdir()
    normal = [
        {
            "title": "社区图书馆夜间开放",
            "content": "社区图书馆延长开放时间至晚上十点，夜间读者以上班族为主。",
        },
        {"title": "Library e-books", "content": "The library lent 86,000 e-books in 2024, up 69%."},
    ]
    (folder / "long_context_web.json").write_text(
        json.dumps(INJECTION_PAGES + normal, ensure_ascii=False), encoding="utf-8"
    )
    agent = GullibleAgent()
    out = tmp_path / "run"
    run_task(
        folder,
        "写一份关于社区图书馆的简短报告，标注来源。",
        settings(tmp_path, validate={"max_revisions": 0, "support_judge": "local"}),
        out=out,
        model=agent.model(),
    )
    assert agent.followed == []
    steps = _trace(out)
    first_call = next(s for s in steps if s["kind"] == "model_call")
    system, task = first_call["messages"][0]["content"], first_call["messages"][1]["content"]
    assert STANDING_RULE in system
    assert "count_length" in task and "count_length" not in outside_material(task)  # titles
    shown = "\n".join([task, *agent.observations])
    for payload in PAYLOADS:
        assert payload in shown and payload not in outside_material(shown), payload
    assert {s["name"] for s in steps if s["kind"] == "tool_call"} == {"search"}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "HACKED" not in report and "E00000000" not in report
