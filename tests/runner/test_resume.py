"""Resuming interrupted runs in-process (the embedded pipeline with a fake model).

The real-process tests (SIGKILL, Ctrl-C, an endpoint that stays down) are in
``test_resume_process.py``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deepfolder.agent.recording import prompt_hash
from deepfolder.llm.fake import FunctionModel
from deepfolder.llm.replay import RecordedCall, ReplayingModel, ReplayLog
from deepfolder.runner.resume import (
    FinishedRun,
    ResumeError,
    ResumePlan,
    load_trace,
    prepare_resume,
)
from deepfolder.runner.run import run_task
from deepfolder.settings import Settings
from runner.test_run import DEMO, settings, small_model

COMPARED_OUTPUTS = [
    "report.md",
    "report.html",
    "report.original.md",
    "comparison.txt",
    "validation.json",
    "evidence.jsonl",
]
"""The outputs a resumed run must write exactly as an uninterrupted one does."""


class Interrupt(Exception):
    pass


def interrupting(fn: Callable[..., Any], at_call: int, exc: BaseException) -> FunctionModel:
    """A fake local model that raises ``exc`` when asked for call number ``at_call``."""
    count = 0

    def reply(messages, tools):  # type: ignore[no-untyped-def]
        nonlocal count
        count += 1
        if count == at_call:
            raise exc
        return fn(messages, tools)

    return FunctionModel(reply, is_local=True)


def trace_records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "trace.jsonl").read_text("utf-8").splitlines()]


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trace records without timings and resume markers (what must equal across runs)."""
    return [
        {k: v for k, v in r.items() if k not in ("at", "duration", "cost")}
        for r in records
        if not (r["kind"] == "note" and r["message"].startswith("resume:"))
    ]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """An uninterrupted pipeline run on the demo folder, and its settings."""
    tmp = tmp_path_factory.mktemp("baseline")
    s = settings(tmp)
    run_task(DEMO, None, s, out=tmp / "run", model=FunctionModel(small_model, is_local=True))
    return tmp / "run", s


@pytest.mark.parametrize("at_call", [1, 3, 6], ids=["first-plan", "second-section", "last-write"])
def test_pipeline_interrupted_between_sections_resumes_to_the_same_outputs(
    tmp_path: Path, baseline: tuple[Path, Settings], at_call: int
) -> None:
    done, s = baseline
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_task(
            DEMO, None, s, out=out, model=interrupting(small_model, at_call, KeyboardInterrupt())
        )
    record = json.loads((out / "run.json").read_text("utf-8"))
    assert record["status"] == "stopped" and "KeyboardInterrupt" in record["reason"]
    assert not (out / "report.md").exists()
    before = trace_records(out)
    recorded = [r["prompt_sha256"] for r in before if r["kind"] == "model_call"]
    assert len(recorded) == at_call - 1

    plan = prepare_resume(out)
    assert isinstance(plan, ResumePlan)
    model = FunctionModel(small_model, is_local=True)
    run_task(plan.folder, None, plan.settings, model=model, resume=plan)

    sent = [prompt_hash(m) for m, _, _ in model.calls]
    # Counted as multisets: a revised section asks the same query-planning prompt again.
    whole = Counter(r["prompt_sha256"] for r in trace_records(done) if r["kind"] == "model_call")
    assert Counter(sent) + Counter(recorded) == whole, "a recorded model call was sent again"
    for name in COMPARED_OUTPUTS:
        assert (out / name).read_bytes() == (done / name).read_bytes(), name
    after = trace_records(out)
    assert after[: len(before)] == before, "earlier records are kept as they were"
    markers = [r for r in after if r["kind"] == "note" and r["message"].startswith("resume:")]
    assert len(markers) == 1 and markers[0] == after[len(before)]
    assert comparable(after) == comparable(trace_records(done))
    usage = json.loads((out / "usage.json").read_text("utf-8"))
    assert (
        usage["total"]["input_tokens"]
        == json.loads((done / "usage.json").read_text())["total"]["input_tokens"]
    )
    record = json.loads((out / "run.json").read_text("utf-8"))
    assert record["status"] == "finished"
    assert record["resumes"][-1]["replayed_model_calls"] == len(recorded)
    assert record["resumes"][-1]["new_model_calls"] == len(sent)


def test_a_finished_run_says_so_and_changes_nothing(
    tmp_path: Path, baseline: tuple[Path, Settings]
) -> None:
    done, _ = baseline
    run_dir = tmp_path / "done"
    shutil.copytree(done, run_dir)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.iterdir()}
    plan = prepare_resume(run_dir)
    assert isinstance(plan, FinishedRun)
    assert plan.report_path == run_dir.resolve() / "report.md"
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.iterdir()}
    assert after == before


def test_resume_twice_after_two_interruptions(
    tmp_path: Path, baseline: tuple[Path, Settings]
) -> None:
    done, s = baseline
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        run_task(DEMO, None, s, out=out, model=interrupting(small_model, 3, Interrupt()))
    plan = prepare_resume(out)
    assert isinstance(plan, ResumePlan)
    with pytest.raises(Interrupt):  # the resumed run is interrupted again, two calls later
        run_task(
            plan.folder,
            None,
            plan.settings,
            resume=plan,
            model=interrupting(small_model, 3, Interrupt()),
        )
    plan = prepare_resume(out)
    assert isinstance(plan, ResumePlan)
    assert len(plan.log.calls) == 4
    model = FunctionModel(small_model, is_local=True)
    run_task(plan.folder, None, plan.settings, model=model, resume=plan)
    total = sum(r["kind"] == "model_call" for r in trace_records(done))
    assert len(model.calls) == total - 4
    for name in COMPARED_OUTPUTS:
        assert (out / name).read_bytes() == (done / name).read_bytes(), name
    assert comparable(trace_records(out)) == comparable(trace_records(done))


def test_changed_settings_or_inputs_are_refused_unless_forced(
    tmp_path: Path, baseline: tuple[Path, Settings]
) -> None:
    _, s = baseline
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        run_task(folder, None, s, out=out, model=interrupting(small_model, 3, Interrupt()))

    with pytest.raises(ResumeError, match=r"settings differ.*agent\.max_turns.*--force"):
        prepare_resume(out, {"agent": {"max_turns": 3}})
    (folder / "long_context_articles.json").write_text("[]", encoding="utf-8")
    (folder / "new.md").write_text("# new\n", encoding="utf-8")
    with pytest.raises(ResumeError) as refused:
        prepare_resume(out)
    message = str(refused.value)
    assert "long_context_articles.json (changed)" in message and "new.md (new)" in message
    assert (out / "run.json").read_text("utf-8").count('"stopped"') == 1  # nothing touched

    plan = prepare_resume(out, force=True)
    assert isinstance(plan, ResumePlan) and plan.forced
    model = FunctionModel(small_model, is_local=True)
    run_task(plan.folder, None, plan.settings, model=model, resume=plan)
    # the folder summary changed, so the run diverged from its trace at once: it says so,
    # writes every step anew, and asks the model whatever no longer matches
    notes = [r["message"] for r in trace_records(out) if r["kind"] == "note"]
    assert any("differs from record 1 of the trace" in n for n in notes)
    assert model.calls and plan.log.diverged_at is not None
    assert (out / "report.md").is_file()
    marker = next(
        r for r in trace_records(out) if r["kind"] == "note" and r["message"].startswith("resume:")
    )
    assert "forced (--force)" in marker["message"] and "new.md" in marker["message"]
    record = json.loads((out / "run.json").read_text("utf-8"))
    assert record["status"] == "finished" and record["resumes"][0]["forced"]


def test_not_a_run_dir_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ResumeError, match="not a run directory"):
        prepare_resume(tmp_path / "missing")
    with pytest.raises(ResumeError, match=r"no run\.json"):
        prepare_resume(tmp_path)


def test_a_step_cut_off_by_a_kill_is_dropped_from_the_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    whole = json.dumps({"kind": "task", "turn": 0}) + "\n"
    trace.write_text(whole + '{"kind": "model_call", "tu', encoding="utf-8")
    assert load_trace(tmp_path) == [{"kind": "task", "turn": 0}]
    assert trace.read_text(encoding="utf-8") == whole
    trace.write_text(whole + "not json\n" + whole, encoding="utf-8")
    with pytest.raises(ResumeError, match="line 2 is damaged"):
        load_trace(tmp_path)


def _recorded(prompt: str, reply: str) -> RecordedCall:
    record = {
        "kind": "model_call",
        "model": "fake:function",
        "prompt_sha256": prompt_hash([{"role": "user", "content": prompt}]),
        "tools": [],
        "response_text": reply,
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    return RecordedCall.from_trace(record)


def test_replay_serves_matching_calls_and_stops_at_the_first_miss() -> None:
    log = ReplayLog([_recorded("a", "A"), _recorded("b", "B"), _recorded("c", "C")], prompt_hash)
    live = FunctionModel(lambda messages, tools: "live " + messages[-1]["content"])
    model = ReplayingModel(live, log)

    def ask(text: str) -> str | None:
        return model.chat([{"role": "user", "content": text}]).content

    assert ask("a") == "A"
    assert model.chat([{"role": "user", "content": "b"}]).usage.input_tokens == 5
    assert ask("x") == "live x"  # diverged: "c" was recorded next
    assert ask("c") == "live c"  # nothing is replayed after a divergence
    assert (log.served, log.sent, log.diverged_at) == (2, 2, 2)
    assert len(live.calls) == 2


def test_cli_resume_refuses_changed_settings_and_reports_a_finished_run(
    tmp_path: Path, baseline: tuple[Path, Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    from deepfolder.cli import main

    done, s = baseline
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        run_task(DEMO, None, s, out=out, model=interrupting(small_model, 3, Interrupt()))
    assert main(["run", "--resume", str(out), "--max-turns", "3"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot resume" in err and "agent.max_turns" in err and "--force" in err
    assert main(["run", str(DEMO), "--resume", str(out)]) == 2
    assert "--resume takes only the run directory" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert main(["run", "--resume", str(done)]) == 0
    assert "already finished; nothing to do" in " ".join(capsys.readouterr().err.split())


def test_each_step_is_on_disk_before_the_next_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder fsyncs every trace line as it is written, so a kill loses at most the
    step in progress."""
    import deepfolder.trace.recorder as recorder_module
    from deepfolder.records import NoteStep
    from deepfolder.trace.recorder import RunRecorder

    synced: list[int] = []
    real_fsync = recorder_module.os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append(len((tmp_path / "trace.jsonl").read_text("utf-8").splitlines()))

    monkeypatch.setattr(recorder_module.os, "fsync", fsync)
    recorder = RunRecorder(tmp_path, live=False)
    for n in range(3):
        recorder.record(NoteStep(turn=n, message=f"step {n}"))
    assert synced == [1, 2, 3]
    recorder.already_written = lambda step: step.turn == 3  # a resumed run's replayed step
    recorder.record(NoteStep(turn=3, message="already in the trace"))
    recorder.record(NoteStep(turn=4, message="new"))
    recorder.close()
    lines = (tmp_path / "trace.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(x)["turn"] for x in lines] == [0, 1, 2, 4]
    assert len(recorder.steps) == 5
