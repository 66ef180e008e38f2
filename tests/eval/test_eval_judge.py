"""``eval reports --judge``: the five scores with the package's fake model, the recorded
calls, the cache, a reply that is not JSON, and once through the CLI against the
scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from deepfolder.cli import main
from deepfolder.eval.judge import parse_reply, spread, task_material
from deepfolder.eval.reports_command import run_reports
from deepfolder.index.embedded import EmbeddedIndex
from deepfolder.llm.fake import FunctionModel
from deepfolder.prompts import report_judge
from deepfolder.records import Locator, Segment, Source
from eval_fixtures import BACKGROUND, GOOD, PAPER, make_batch
from scripted_server import ScriptedServer, completion

KEY_POINTS = [
    "检索增强方法提升准确率",
    "准确率从七成提高到八成五",
    "使用三个公开数据集",
    "数据表的结论",
]


def judge_reply(text: str) -> str:
    """What the scripted judge answers to each rubric's prompt (by the prompt's words)."""
    if "List the key points" in text:
        return json.dumps({"key_points": KEY_POINTS}, ensure_ascii=False)
    if "Key points of the user's material" in text:
        return '{"covered": [1, 2, 9]}'  # 9 is not a point: ignored
    if "Does the evidence support the claim" in text:
        verdict = "unsupported" if "部署成本" in text else "supported"
        return json.dumps({"verdict": verdict, "reason": "scripted"})
    if "Which sources are relevant" in text:
        return '{"relevant": [1, 2]}'  # data.csv and paper.pdf (the user's files come first)
    if "follows the request's instructions" in text:
        return '{"score": 80, "reason": "scripted"}'
    if "depth and quality" in text:
        return '```json\n{"score": 60, "reason": "scripted"}\n```'
    raise AssertionError(f"unexpected judge prompt: {text[:200]}")


def fake_judge(**overrides: str) -> FunctionModel:
    def reply(messages: list[dict[str, Any]], tools: Any) -> str:
        text = messages[-1]["content"]
        for marker, answer in overrides.items():
            if marker in text:
                return answer
        return judge_reply(text)

    return FunctionModel(reply, name="fake:judge")


def evaluate(tmp_path: Path, model: FunctionModel, out: str = "out") -> dict[str, Any]:
    batch = tmp_path / "b"
    if not batch.exists():
        make_batch(batch, {"t1": GOOD, "t2": BACKGROUND}, {})
    return run_reports(
        [batch],
        None,
        tmp_path / out,
        console=Console(file=io.StringIO()),
        judge_model=model,
        judge_cache=tmp_path / "cache",
    )


def scores(data: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    return {r["task"]: r["judge"]["scores"] for r in data["sets"][0]["runs"]}


def test_five_scores_from_the_fake_judge(tmp_path: Path) -> None:
    model = fake_judge()
    data = evaluate(tmp_path, model)
    got = scores(data)
    # IR: points 1 and 2 of 4. FA: t1's three cited claims supported; t2's claim about
    # deployment costs is not (1 of 2). CC: paper.pdf cited of the relevant data.csv and
    # paper.pdf (t1); neither (t2). IF 80, DQ 60 (a fenced reply is read too).
    assert got["t1"] == {
        "judge_ir": 50.0,
        "judge_fa": 100.0,
        "judge_cc": 50.0,
        "judge_if": 80.0,
        "judge_dq": 60.0,
        "judge_total": 68.0,
    }
    assert got["t2"] == {
        "judge_ir": 50.0,
        "judge_fa": 50.0,
        "judge_cc": 0.0,
        "judge_if": 80.0,
        "judge_dq": 60.0,
        "judge_total": 48.0,
    }
    t1 = data["sets"][0]["runs"][0]["judge"]
    assert t1["material_from"] == "evidence"  # the fixture's index is gone
    assert t1["detail"]["judge_ir"]["covered"] == [1, 2]
    assert t1["detail"]["judge_cc"]["relevant"] == ["data.csv", "paper.pdf"]
    # every call at temperature 0; key points once (both tasks have the same request and
    # material, so t2's come from the cache), then IR, FA per claim, CC, IF and DQ per run
    assert all(kwargs["temperature"] == 0.0 for _, _, kwargs in model.calls)
    assert len(model.calls) == 1 + (1 + 3 + 1 + 1 + 1) + (1 + 2 + 1 + 1 + 1)
    judge = data["judge"]
    assert judge["rubric_version"] == report_judge.RUBRIC_VERSION
    assert judge["rubric_hash"] == report_judge.rubric_hash()
    assert (judge["model"], judge["calls"], judge["cache_hits"]) == ("fake:judge", 14, 1)
    md = (tmp_path / "out" / "eval.md").read_text(encoding="utf-8")
    assert "| judge total | 68.0 | 48.0 | 58.0 |" in md


def test_every_judge_call_is_recorded_like_a_run_trace(tmp_path: Path) -> None:
    evaluate(tmp_path, fake_judge())
    judge_dir = tmp_path / "out" / "judge"
    steps = [json.loads(line) for line in (judge_dir / "trace.jsonl").read_text().splitlines()]
    calls = [s for s in steps if s["kind"] == "model_call"]
    assert len(calls) == 14
    assert [s["turn"] for s in calls] == list(range(1, 15))
    notes = [s["message"] for s in steps if s["kind"] == "note"]
    assert len(notes) == 1 and notes[0].startswith("t2: key points from the cache")
    purposes = [s["purpose"] for s in calls]
    assert purposes[:2] == ["judge key points t1", "judge IR t1"]
    assert purposes.count("judge FA t1") == 3
    first = calls[0]
    assert first["model"] == "fake:judge" and first["prompt_sha256"]
    assert first["messages"][0]["content"] == report_judge.SYSTEM
    assert "List the key points" in first["messages"][1]["content"]
    assert json.loads(first["response_text"]) == {"key_points": KEY_POINTS}
    usage = json.loads((judge_dir / "usage.json").read_text())
    assert usage["models"]["fake:judge"]["calls"] == 14
    assert "judge key points t1" in (judge_dir / "turns.txt").read_text()


def test_results_are_cached_by_report_rubric_and_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = evaluate(tmp_path, fake_judge())
    again = fake_judge()
    second = evaluate(tmp_path, again, out="out2")
    assert again.calls == []  # everything from the cache
    assert scores(second) == scores(first)
    assert second["judge"]["cache_hits"] == 4  # key points and scores of two tasks
    notes = [
        json.loads(line)
        for line in (tmp_path / "out2" / "judge" / "trace.jsonl").read_text().splitlines()
    ]
    assert [n["message"].split(":")[0] for n in notes] == ["t1", "t1", "t2", "t2"]
    assert all("from the cache" in n["message"] for n in notes)

    other_model = fake_judge()
    other_model.name = "fake:other-judge"
    evaluate(tmp_path, other_model, out="out3")
    assert len(other_model.calls) == 14

    monkeypatch.setattr(report_judge, "RUBRIC_VERSION", "report-judge-test")
    new_rubric = fake_judge()
    evaluate(tmp_path, new_rubric, out="out4")
    assert len(new_rubric.calls) == 14


def test_a_reply_that_is_not_json_leaves_that_score_out(tmp_path: Path) -> None:
    model = fake_judge(**{"depth and quality": "The report is fine, I would say 70."})
    data = evaluate(tmp_path, model)
    t1 = data["sets"][0]["runs"][0]["judge"]
    assert t1["scores"]["judge_dq"] is None
    assert "no JSON object" in t1["errors"]["judge_dq"]
    assert t1["scores"]["judge_total"] == 70.0  # (50 + 100 + 50 + 80) / 4
    retry = fake_judge()
    evaluate(tmp_path, retry, out="out2")
    # the key points were cached; the runs' scores were not, so they are asked again
    assert len(retry.calls) == (1 + 3 + 1 + 1 + 1) + (1 + 2 + 1 + 1 + 1)


def test_key_points_read_the_users_files_from_the_run_index(tmp_path: Path) -> None:
    run_dir = make_batch(tmp_path / "b", {"t1": GOOD}, {}) / "runs" / "t1"
    index_dir = tmp_path / "index"
    data = Source("data.csv", "data.csv", "sheet")
    index = EmbeddedIndex(index_dir, dense=False)
    index.add(
        [PAPER, data],
        [
            Segment.create(PAPER.id, "第一页的全文。", Locator(page=1), seq=0),
            Segment.create(PAPER.id, "第二页的全文。", Locator(page=2), seq=1),
            Segment.create(data.id, "年份,准确率", Locator(rows=(1, 2)), seq=0),
        ],
    )
    index.close()
    ingest = json.loads((run_dir / "ingest_report.json").read_text())
    (run_dir / "ingest_report.json").write_text(json.dumps({**ingest, "index_dir": str(index_dir)}))
    material, origin = task_material([run_dir], chars=20)
    # every user file, each its share of the characters, from its start
    assert (origin, material) == (
        "index",
        [("data.csv", "年份,准确率"), ("paper.pdf", "第一页的全文。\n第二")],
    )


def test_a_prompt_too_long_for_the_judge_is_not_sent(tmp_path: Path) -> None:
    model = fake_judge()
    model.context_window = 700  # the key points, IF and DQ prompts do not fit with the reply
    data = evaluate(tmp_path, model)
    t1 = data["sets"][0]["runs"][0]["judge"]
    assert t1["scores"]["judge_ir"] is None  # no key points
    assert t1["scores"]["judge_fa"] == 100.0  # the support judge's short prompts fit
    assert "too long for the judge's context window of 700" in t1["errors"]["judge_if"]
    assert not any("List the key points" in m[-1]["content"] for m, _, _ in model.calls)


def test_parse_reply_and_spread() -> None:
    assert parse_reply('text {"score": 5} more', "score") == 5
    with pytest.raises(ValueError, match="has no 'score'"):
        parse_reply('{"points": 5}', "score")
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread([1, 2], 5) == [1, 2]


def test_judge_through_the_cli_against_a_local_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPFOLDER_ALLOW_MODEL_REQUESTS", "1")

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        return completion(judge_reply(body["messages"][-1]["content"]))

    batch = make_batch(tmp_path / "b", {"t1": GOOD}, {})
    out = tmp_path / "out"
    with ScriptedServer(reply, tmp_path / "requests.jsonl") as server:
        code = main(
            [
                "eval",
                "reports",
                str(batch),
                "--judge",
                "llamacpp:judge",
                "--judge-base-url",
                server.base_url,
                "--judge-cache",
                str(tmp_path / "cache"),
                "--out",
                str(out),
            ]
        )
        bodies = [r["body"] for r in server.requests]
    assert code == 0
    assert len(bodies) == 1 + 1 + 3 + 1 + 1 + 1
    assert all(b["temperature"] == 0.0 for b in bodies)
    data = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert data["sets"][0]["runs"][0]["judge"]["scores"]["judge_total"] == 68.0
    assert data["judge"]["model"] == "llamacpp:judge"
    trace = (out / "judge" / "trace.jsonl").read_text().splitlines()
    assert [s["prompt_sha256"] for s in map(json.loads, trace)] == [
        r["prompt_sha256"] for r in server.requests
    ]
