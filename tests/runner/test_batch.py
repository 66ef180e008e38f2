"""``deepfolder batch`` as a real process against a scripted OpenAI-compatible server on
127.0.0.1: every task gets its run directory and the summary its row, at one and at three
jobs; a bad folder and a timeout are recorded while the other tasks finish; the batch
process killed with SIGKILL mid-task takes its worker with it, and ``--resume`` finishes
the batch redoing no task and sending no recorded model call again; two tasks on one
folder never ingest it at the same time.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepfolder.ingest.lock import ingest_lock
from deepfolder.ingest.pipeline import index_dir_for
from deepfolder.runner.batch_tasks import BatchError, discover_tasks
from scripted_server import Refusal, ScriptedServer, completion, subprocess_env, tool_call

TOPICS = {
    "library": (
        "社区图书馆",
        "青禾区共有社区图书馆14家，2023年起开通电子书借阅服务。2024年社区图书馆电子书借阅量为8.6万册次。",
    ),
    "park": (
        "城市公园",
        "青禾区城市公园共有23座，2024年城市公园接待游客410万人次，夜间开放的城市公园游客最多。",
    ),
    "bus": (
        "社区公交",
        "青禾区社区公交共有12条线路，2024年社区公交日均客运量为1.9万人次，早高峰最为拥挤。",
    ),
}


def request_for(topic: str) -> str:
    return f"写一篇关于{topic}的简短报告，包含以下部分：（1）背景；（2）发现。标注来源。"


def topic_of(body: dict[str, Any]) -> str | None:
    text = json.dumps(body.get("messages") or [], ensure_ascii=False)
    return next((t for t, _ in TOPICS.values() if t in text), None)


def scripted_agent(body: dict[str, Any]) -> dict[str, Any]:
    """Search once, then write both sections citing what the search returned; every
    citation is judged supported."""
    if "response_format" in body:
        return completion('{"verdict": "supported", "reason": "the passage states it"}')
    topic = topic_of(body) or "材料"
    messages = body["messages"]
    observations = [str(m.get("content") or "") for m in messages if m["role"] == "tool"]
    if body.get("tools") and not observations:
        return completion(None, tool_calls=[tool_call("search", {"query": topic}, "c0")])
    ids = list(dict.fromkeys(re.findall(r"E[0-9a-f]{8}", "\n".join(observations))))
    cite = f" [{ids[0]}]" if ids else ""
    return completion(
        f"# {topic}报告\n\n## 背景\n\n青禾区{topic}的数量见材料{cite}。\n\n"
        f"## 发现\n\n2024年{topic}的使用情况见材料{cite}。\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedServer]:
    log = tmp_path_factory.mktemp("server") / "requests.jsonl"
    with ScriptedServer(scripted_agent, log) as s:
        yield s


def make_cases(root: Path, tasks: dict[str, str], *, folders: dict[str, str] | None = None) -> Path:
    """A benchmark-layout cases folder: task → topic key; ``folders`` maps a task to
    another task's folder (shared), or to a folder that is not there."""
    cases = root / "cases"
    cases.mkdir(parents=True)
    lines = []
    for task, key in tasks.items():
        topic, text = TOPICS[key]
        entry: dict[str, Any] = {"task": task, "query": request_for(topic)}
        folder = (folders or {}).get(task, task)
        if folder != task:
            entry["folder"] = folder
        if folder == task:
            (cases / task).mkdir()
            (cases / task / "notes.md").write_text(f"# {topic}\n\n{text}\n", encoding="utf-8")
        lines.append(json.dumps(entry, ensure_ascii=False))
    (cases / "query.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"model": {"max_retries": 1, "timeout_s": 30}}
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return cases


def settings_args(root: Path, server: ScriptedServer) -> list[str]:
    return [
        *("--model", "vllm:test-model", "--base-url", server.base_url),
        *("--cache-dir", str(root / "cache"), "--no-dense", "--config", str(root / "config.json")),
    ]


def start_batch(root: Path, server: ScriptedServer, *extra: str) -> subprocess.Popen[str]:
    command = [
        *(sys.executable, "-m", "deepfolder.cli", "batch", str(root / "cases")),
        *("--out", str(root / "batch")),
        *settings_args(root, server),
        *extra,
    ]
    return subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def resume_batch(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        *(sys.executable, "-m", "deepfolder.cli", "batch", str(root / "cases")),
        *("--out", str(root / "batch"), "--resume", *extra),
    ]
    return subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def batch_record(root: Path) -> dict[str, Any]:
    return json.loads((root / "batch" / "batch.json").read_text("utf-8"))


def states(root: Path) -> dict[str, str]:
    return {t["task"]: t["state"] for t in batch_record(root)["tasks"]}


def trace_prompts(run_dir: Path) -> list[str]:
    trace = run_dir / "trace.jsonl"
    lines = trace.read_text("utf-8").splitlines() if trace.exists() else []
    return [r["prompt_sha256"] for r in map(json.loads, lines) if r["kind"] == "model_call"]


# -- the tasks of a cases folder ------------------------------------------------------------
def test_the_benchmark_layout_and_a_folder_of_task_folders(tmp_path: Path) -> None:
    cases = tmp_path / "bench"
    cases.mkdir()
    (cases / "002").mkdir()
    (cases / "query.jsonl").write_text(
        '{"task": "002", "query": "写报告", "multimodal": [{"name": "v.mp4", "type": "video"}]}\n'
        "\n"
        '{"task": "002b", "folder": "002", "query": "另一份报告"}\n'
        '{"task": "003", "query": "第三份"}\n',
        encoding="utf-8",
    )
    layout, specs = discover_tasks(cases)
    assert layout == "query.jsonl"
    assert [(s.task, s.folder.name, s.request) for s in specs] == [
        ("002", "002", "写报告"),
        ("002b", "002", "另一份报告"),
        ("003", "003", "第三份"),  # not there: its run fails, the batch goes on
    ]
    assert specs[0].multimodal == [{"name": "v.mp4", "type": "video"}]
    assert [s.task for s in discover_tasks(cases, ["003", "002"])[1]] == ["002", "003"]
    with pytest.raises(BatchError, match="no task 004"):
        discover_tasks(cases, ["004"])

    plain = tmp_path / "plain"
    for name, query in (("a", "甲"), ("b", None), ("c", "丙")):
        (plain / name).mkdir(parents=True)
        if query:
            (plain / name / "query.txt").write_text(query, encoding="utf-8")
    layout, specs = discover_tasks(plain)
    assert layout == "query.txt"
    assert [(s.task, s.request) for s in specs] == [("a", "甲"), ("c", "丙")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"task": "a", "query": "x"}\n{"task": "a", "query": "y"}\n', "appears twice"),
        ('{"task": "a", "query": "x"}\nnot json\n', "line 2 is not valid JSON"),
        ('{"task": "../a", "query": "x"}\n', "cannot name a run directory"),
        ('{"task": "a"}\n', 'needs a "task" and a non-empty "query"'),
    ],
)
def test_a_bad_query_jsonl_is_refused_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "query.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(BatchError, match=re.escape(message)):
        discover_tasks(tmp_path)


# -- batches --------------------------------------------------------------------------------
@pytest.mark.reliability
@pytest.mark.parametrize("jobs", [1, 3])
def test_a_batch_writes_a_run_per_task_and_the_summary(
    tmp_path: Path, server: ScriptedServer, jobs: int
) -> None:
    make_cases(tmp_path, {"t1": "library", "t2": "park", "t3": "bus"})
    code, out, err = finish(start_batch(tmp_path, server, "--jobs", str(jobs)))
    assert code == 0, err
    record = batch_record(tmp_path)
    assert record["model"] == "vllm:test-model" and record["jobs"] == jobs
    assert record["command"][:2] == ["deepfolder", "batch"]
    assert record["ended_at"] and record["layout"] == "query.jsonl"
    config = json.loads((tmp_path / "batch" / "config.json").read_text("utf-8"))
    assert config["model"]["base_url"] == server.base_url
    tasks = record["tasks"]
    assert [(t["task"], t["state"], t["attempts"]) for t in tasks] == [
        ("t1", "done", 1),
        ("t2", "done", 1),
        ("t3", "done", 1),
    ]
    for t in tasks:
        run_dir = Path(t["run_dir"])
        assert run_dir == tmp_path / "batch" / "runs" / t["task"]
        assert (run_dir / "report.md").exists()
        run = json.loads((run_dir / "run.json").read_text("utf-8"))
        assert run["status"] == "finished" and run["settings_hash"] == record["settings_hash"]
        # the run found its request itself, in query.jsonl, and says so
        settings = json.loads((run_dir / "settings.json").read_text("utf-8"))
        assert settings["request_from"].endswith(f"query.jsonl (task {t['task']})")
    if jobs == 3:  # all three ran at once
        assert max(t["started_at"] for t in tasks) <= min(t["ended_at"] for t in tasks)
    else:
        assert tasks[0]["ended_at"] <= tasks[1]["started_at"] <= tasks[2]["started_at"]
    flat = " ".join(err.split())
    for name in ("t1", "t2", "t3"):
        assert re.search(rf"done {name} in [\d.]+s: validation passed", flat), flat
    assert "[3/3] done 3 · running 0 · failed 0" in flat

    summary = json.loads((tmp_path / "batch" / "summary.json").read_text("utf-8"))
    rows = summary["tasks"]
    assert [r["task"] for r in rows] == ["t1", "t2", "t3"]
    for row in rows:
        assert row["state"] == "done" and row["passed"] is True
        assert row["sections"] == "2/2 present"
        assert row["citations_total"] >= 2 and row["citations_resolving"] == row["citations_total"]
        assert row["supported"] >= 2 and row["unsupported"] == 0
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["wall_s"] > 0
    totals = summary["totals"]
    assert totals["states"] == {"done": 3} and totals["validation_passed"] == 3
    assert totals["input_tokens"] == sum(r["input_tokens"] for r in rows)
    assert summary["batch"]["model"] == "vllm:test-model"
    with (tmp_path / "batch" / "summary.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [r["task"] for r in table] == ["t1", "t2", "t3", "total"]
    assert table[0]["passed"] == "True" and table[3]["passed"] == "3/3"
    assert int(table[3]["input_tokens"]) == totals["input_tokens"]
    md = (tmp_path / "batch" / "summary.md").read_text("utf-8")
    assert "| task | state | checks |" in md and "| t2 | done | passed |" in md
    assert "**total**" in md
    assert "t1" in out and "total" in out  # the table, on standard output


@pytest.mark.reliability
def test_a_bad_folder_and_a_timeout_are_recorded_and_the_batch_goes_on(
    tmp_path: Path, server: ScriptedServer
) -> None:
    make_cases(
        tmp_path, {"good": "library", "missing": "park", "slow": "bus"}, folders={"missing": "gone"}
    )
    release = threading.Event()
    slow_topic = TOPICS["bus"][0]

    def stall(n: int, body: dict[str, Any]) -> bool:
        if topic_of(body) == slow_topic:
            release.wait(120)  # never answered while the first batch runs
            return False
        return True

    server.on_request = stall
    try:
        code, _, err = finish(
            start_batch(tmp_path, server, "--jobs", "3", "--timeout-per-task", "20")
        )
    finally:
        server.on_request = None
        release.set()
    assert code == 1, err
    tasks = {t["task"]: t for t in batch_record(tmp_path)["tasks"]}
    assert {k: t["state"] for k, t in tasks.items()} == {
        "good": "done",
        "missing": "failed",
        "slow": "timed_out",
    }
    assert "gone is not a folder" in tasks["missing"]["reason"]
    assert "--timeout-per-task 20s" in tasks["slow"]["reason"]
    assert tasks["slow"]["wall_s"] >= 20
    slow_run = json.loads((tmp_path / "batch/runs/slow/run.json").read_text("utf-8"))
    assert slow_run["status"] == "stopped"  # stopped with SIGINT: the run said so itself
    flat = " ".join(err.split())
    assert "failed missing after" in flat and "timed out slow after" in flat
    rows = {
        r["task"]: r for r in json.loads((tmp_path / "batch/summary.json").read_text())["tasks"]
    }
    assert rows["missing"]["passed"] is None and "not a folder" in rows["missing"]["reason"]
    assert rows["good"]["passed"] is True

    # the endpoint answers again: the timed-out run continues, the good one is not redone
    resumed = resume_batch(tmp_path)
    assert resumed.returncode == 1, resumed.stderr  # the missing folder is still missing
    tasks = {t["task"]: t for t in batch_record(tmp_path)["tasks"]}
    assert {k: (t["state"], t["attempts"]) for k, t in tasks.items()} == {
        "good": ("done", 1),
        "missing": ("failed", 2),
        "slow": ("done", 2),
    }
    log = (tmp_path / "batch/logs/slow.log").read_text("utf-8")
    assert "run --resume" in log and "replayed from the trace" in log
    assert len(json.loads((tmp_path / "batch/batch.json").read_text())["resumes"]) == 1


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.reliability
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_the_batch_then_resume_redoes_nothing_and_resends_nothing(
    tmp_path: Path, server: ScriptedServer
) -> None:
    make_cases(tmp_path, {"t1": "library", "t2": "park", "t3": "bus"})
    runs = tmp_path / "batch" / "runs"
    seen: list[int] = []
    killed = threading.Event()
    proc = start_batch(tmp_path, server, "--jobs", "1")

    def kill(n: int, body: dict[str, Any]) -> bool:
        if topic_of(body) != TOPICS["park"][0]:
            return True
        seen.append(n)
        if len(seen) == 2:  # t2's second request: t2 is mid-run
            server.on_request = None
            proc.send_signal(signal.SIGKILL)
            killed.set()
            return False
        return True

    start = len(server.requests)
    server.on_request = kill
    try:
        code, _, _ = finish(proc)
    finally:
        server.on_request = None
    assert killed.is_set() and code == -signal.SIGKILL
    record = {t["task"]: t for t in batch_record(tmp_path)["tasks"]}
    assert record["t1"]["state"] == "done" and record["t2"]["state"] == "running"
    assert record["t3"]["state"] == "pending"
    worker = record["t2"]["pid"]
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the worker outlived the batch"
    time.sleep(0.5)
    sent_before = len(server.requests)
    assert not (runs / "t2" / "report.md").exists()
    recorded = {t: trace_prompts(runs / t) for t in ("t1", "t2")}
    assert recorded["t2"] and server.prompts(start)[: len(recorded["t1"])] == recorded["t1"]
    t1_trace = (runs / "t1" / "trace.jsonl").read_bytes()

    resumed = resume_batch(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    tasks = {t["task"]: t for t in batch_record(tmp_path)["tasks"]}
    assert {k: (t["state"], t["attempts"]) for k, t in tasks.items()} == {
        "t1": ("done", 1),  # not redone
        "t2": ("done", 2),
        "t3": ("done", 1),
    }
    assert (runs / "t1" / "trace.jsonl").read_bytes() == t1_trace
    sent_after = Counter(server.prompts(sent_before))
    assert not sent_after & Counter(recorded["t1"] + recorded["t2"]), "a recorded call was re-sent"
    # what the resumed batch sent is exactly what the traces did not hold
    final = Counter(p for t in ("t1", "t2", "t3") for p in trace_prompts(runs / t))
    assert final == Counter(recorded["t1"] + recorded["t2"]) + sent_after
    log = (tmp_path / "batch/logs/t2.log").read_text("utf-8")
    assert "== attempt 2 at" in log and f"deepfolder run --resume {runs / 't2'}" in log
    assert f"{len(recorded['t2'])} model call(s) replayed from the trace" in " ".join(log.split())
    assert "already holds a batch" in finish(start_batch(tmp_path, server))[2]


@pytest.mark.reliability
def test_tasks_sharing_a_folder_never_ingest_it_at_the_same_time(
    tmp_path: Path, server: ScriptedServer
) -> None:
    cases = make_cases(
        tmp_path, {"first": "library", "second": "library"}, folders={"second": "first"}
    )
    from deepfolder.cli import _settings_from, build_parser

    args = build_parser().parse_args(["batch", str(cases), *settings_args(tmp_path, server)])
    folder = cases / "first"
    index_dir = index_dir_for(folder, _settings_from(args))
    logs = [tmp_path / "batch" / "logs" / f"{t}.log" for t in ("first", "second")]
    with ingest_lock(index_dir, folder.resolve(), lambda _: None):  # as another ingest would
        proc = start_batch(tmp_path, server, "--jobs", "2")
        deadline = time.time() + 60
        while time.time() < deadline and not all(
            log.exists() and "waiting for another ingest" in log.read_text("utf-8") for log in logs
        ):
            time.sleep(0.05)
        assert all("waiting for another ingest" in log.read_text("utf-8") for log in logs)
        assert not (index_dir / "manifest.json").exists()  # neither got past the lock
    code, _, err = finish(proc)
    assert code == 0, err
    statuses = []
    for task in ("first", "second"):
        report = json.loads((tmp_path / f"batch/runs/{task}/ingest_report.json").read_text())
        assert report["index_dir"] == str(index_dir)
        statuses.append(sorted(f["status"] for f in report["files"]))
    # one worker built the index; the other waited for it and found every file done
    assert sorted(statuses) == [["cached"], ["indexed"]]


@pytest.mark.reliability
def test_ctrl_c_stops_the_workers_and_resume_finishes(
    tmp_path: Path, server: ScriptedServer
) -> None:
    make_cases(tmp_path, {"t1": "park"})
    asked = threading.Event()
    release = threading.Event()

    def hold(n: int, body: dict[str, Any]) -> bool:
        asked.set()
        release.wait(120)
        return False

    server.on_request = hold
    try:
        proc = start_batch(tmp_path, server)
        assert asked.wait(60)
        proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc)
    finally:
        server.on_request = None
        release.set()
    assert code == 130, err
    flat = " ".join(err.split())
    assert (
        f"continue with deepfolder batch {tmp_path / 'cases'} --out {tmp_path / 'batch'} --resume"
        in flat
    )
    task = batch_record(tmp_path)["tasks"][0]
    assert task["state"] == "interrupted" and task["pid"] is None
    run = json.loads((tmp_path / "batch/runs/t1/run.json").read_text("utf-8"))
    assert run["status"] == "stopped"  # the worker got the SIGINT and said so
    assert (tmp_path / "batch/summary.json").exists()

    resumed = resume_batch(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert states(tmp_path) == {"t1": "done"}


def request_times(server: ScriptedServer, start: int) -> list[float]:
    return sorted(r["at"] for r in server.requests[start:])


@pytest.mark.reliability
def test_the_workers_share_the_request_rate(tmp_path: Path, server: ScriptedServer) -> None:
    make_cases(tmp_path, {"t1": "library", "t2": "park", "t3": "bus"})
    config = {"model": {"max_retries": 1, "timeout_s": 30, "max_requests_per_minute": 120}}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    start = len(server.requests)
    code, _, err = finish(start_batch(tmp_path, server, "--jobs", "3"))
    assert code == 0, err
    times = request_times(server, start)
    assert len(times) >= 9  # three tasks, each searching, writing and having it judged
    # 120 a minute: one request every 0.5 s across all three workers. The arrival times
    # jitter by what building and sending a request takes on a busy machine, so any k
    # consecutive gaps add up to k * 0.5 s less that jitter (without the limit, the
    # three workers' requests arrive within milliseconds of each other)
    for i, j in itertools.combinations(range(len(times)), 2):
        assert times[j] - times[i] >= (j - i) * 0.5 - 0.3, (i, j, times[j] - times[i])
    assert (tmp_path / "batch" / "rate_limit.json").exists()


@pytest.mark.reliability
def test_a_retry_after_one_worker_gets_holds_every_worker(
    tmp_path: Path, server: ScriptedServer
) -> None:
    make_cases(tmp_path, {"t1": "library", "t2": "park", "t3": "bus"})
    first_three = threading.Barrier(3)
    refused_at: list[float] = []

    def throttle(n: int, body: dict[str, Any]) -> bool | Refusal:
        if len(refused_at) or n - start > 3:
            return True
        try:  # the first request of each worker: all three are waiting for an answer
            first_three.wait(60)
        except threading.BrokenBarrierError:
            return True
        if n - start == 1:
            refused_at.append(time.time())
            return Refusal(429, {"retry-after": "3"})
        time.sleep(0.5)  # the refused worker records the hold before the others go on
        return True

    start = len(server.requests)
    server.on_request = throttle
    try:
        code, _, err = finish(start_batch(tmp_path, server, "--jobs", "3"))
    finally:
        server.on_request = None
    assert code == 0, err
    assert refused_at, "the three workers never had a request waiting at once"
    later = [r["at"] for r in server.requests[start + 3 :]]
    assert later and min(later) >= refused_at[0] + 2.9, [t - refused_at[0] for t in later]
    assert all(s == "done" for s in states(tmp_path).values())


def test_resume_takes_a_run_that_finished_unrecorded_as_done(tmp_path: Path) -> None:
    """The batch died after a worker finished its run but before batch.json said so."""
    from rich.console import Console

    from deepfolder.runner.batch import resume_batch
    from deepfolder.runner.batch_tasks import Batch, TaskState
    from deepfolder.settings import load_settings

    cases = tmp_path / "cases"
    (cases / "a").mkdir(parents=True)
    (cases / "a" / "query.txt").write_text("写报告", encoding="utf-8")
    batch_dir = tmp_path / "batch"
    run_dir = batch_dir / "runs" / "a"
    run_dir.mkdir(parents=True)
    settings = load_settings(overrides={"cache_dir": str(tmp_path / "cache")})
    (batch_dir / "config.json").write_text(json.dumps(settings.to_json_dict()), encoding="utf-8")
    task = TaskState("a", str(cases / "a"), "写报告", "query.txt", False, str(run_dir))
    task.state, task.attempts = "running", 1
    batch = Batch(
        dir=batch_dir,
        cases_dir=str(cases),
        layout="query.txt",
        command=["deepfolder", "batch", str(cases)],
        settings_hash=settings.settings_hash(),
        model="embedded:qwen2.5-coder-1.5b",
        embedded=True,
        jobs=1,
        timeout_per_task_s=None,
        tasks=[task],
    )
    batch.save()
    (run_dir / "run.json").write_text('{"status": "finished"}', encoding="utf-8")
    (run_dir / "validation.json").write_text(
        json.dumps({"passed": False, "failures": ["length: 90 字"], "checks": []}),
        encoding="utf-8",
    )
    console = Console(file=io.StringIO(), width=200)
    code = resume_batch(cases, batch_dir, jobs=None, timeout_s=None, command=[], console=console)
    assert code == 0
    record = json.loads((batch_dir / "batch.json").read_text("utf-8"))
    assert [(t["state"], t["attempts"]) for t in record["tasks"]] == [("done", 1)]
    md = (batch_dir / "summary.md").read_text("utf-8")
    assert "| a | done | FAILED |" in md and "- a: length: 90 字" in md

    changed = {**settings.to_json_dict(), "cache_dir": str(tmp_path / "elsewhere")}
    (batch_dir / "config.json").write_text(json.dumps(changed), encoding="utf-8")
    with pytest.raises(BatchError, match="settings now resolve to hash"):
        resume_batch(cases, batch_dir, jobs=None, timeout_s=None, command=[], console=console)


def test_what_a_worker_left_decides_the_next_attempt(tmp_path: Path) -> None:
    from deepfolder.runner.batch_workers import _clear_unstarted, _error_line, _outcome

    unstarted = tmp_path / "unstarted"  # killed before run.json: nothing of value
    unstarted.mkdir()
    (unstarted / "request.txt").write_text("写报告", encoding="utf-8")
    (unstarted / "settings.json").write_text("{}", encoding="utf-8")
    _clear_unstarted(unstarted)
    assert not unstarted.exists()
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "report.md").write_text("#", encoding="utf-8")
    with pytest.raises(BatchError, match="cannot be resumed; move it away"):
        _clear_unstarted(odd)
    assert (odd / "report.md").exists()

    out = "deepfolder run …\nmodel error: HTTP 503 from http://x/v1\nthe trace is intact; resume with: …\n"
    assert _error_line(out) == "model error: HTTP 503 from http://x/v1"
    assert _error_line("== attempt\nerror: /x is not a folder\n") == "/x is not a folder"
    assert (
        _error_line("Traceback (most recent call last):\n  …\nValueError: bad\n")
        == "ValueError: bad"
    )
    assert _outcome(-9, odd, None, "") == ("failed", "the run was killed by SIGKILL")
    assert _outcome(130, odd, "timeout", "") == ("timed_out", None)
    (odd / "run.json").write_text('{"status": "finished"}', encoding="utf-8")
    assert _outcome(0, odd, "timeout", "") == ("done", None)  # finished just in time


def test_a_tasks_multimodal_entries_reach_its_run(tmp_path: Path) -> None:
    from rich.console import Console

    from deepfolder.runner.batch_tasks import Batch, TaskState
    from deepfolder.runner.batch_workers import Scheduler

    entries = [{"name": "v.mp4", "type": "video", "description": "一段讲座"}]
    task = TaskState("a", str(tmp_path), "写报告", "query.jsonl", False, str(tmp_path / "r"))
    task.multimodal = entries
    bad = TaskState("b", str(tmp_path), "写报告", "query.jsonl", False, str(tmp_path / "s"))
    bad.multimodal = [{"type": "video"}]
    batch = Batch(tmp_path, str(tmp_path), "query.jsonl", [], "h", "m", False, 1, None, [task])
    scheduler = Scheduler(batch, Console(file=io.StringIO()))
    command = scheduler._command(task, Path(task.run_dir), None)
    notes = Path(command[command.index("--material-notes") + 1])
    assert notes == tmp_path / "material" / "a.json"
    assert json.loads(notes.read_text("utf-8")) == [{**entries[0]}]
    with pytest.raises(BatchError, match='entry 1 needs a non-empty "name"'):
        scheduler._command(bad, Path(bad.run_dir), None)


# -- the Ray engine -------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together, so none is given twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real local Ray cluster (head only, 2 CPUs) on 127.0.0.1; its address.

    Started with ``--block`` in a session of its own and stopped by signalling that
    process group (``ray stop`` would stop every Ray cluster of the machine). Token
    authentication is off for the cluster and the batches (a ``~/.ray/auth_token`` left
    by another Ray would otherwise turn it on for one side only)."""
    pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        yield from _start_ray_cluster(tmp_path_factory)


def _start_ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    flags = [
        "--ray-client-server-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
        "--node-manager-port",
        "--object-manager-port",
    ]
    port, *others = free_ports(len(flags) + 1)
    ports = dict(zip(flags, others, strict=True))
    log = (tmp_path_factory.mktemp("ray") / "ray.log").open("wb")
    command = [
        *(str(Path(sys.executable).parent / "ray"), "start", "--head", "--block"),
        *("--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2"),
        *("--include-dashboard", "false", "--disable-usage-stats"),
        *("--object-store-memory", str(200 * 2**20)),
        *(x for kv in ports.items() for x in (kv[0], str(kv[1]))),
    ]
    proc = subprocess.Popen(
        command, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "ray start exited; see its log"
            time.sleep(0.5)
        time.sleep(3)  # the raylet registers after the GCS listens
        yield address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@pytest.mark.reliability
def test_the_ray_engine_runs_every_task_on_the_cluster(
    tmp_path: Path, server: ScriptedServer, ray_cluster: str
) -> None:
    make_cases(tmp_path, {"t1": "library", "t2": "park", "t3": "bus"})
    code, _, err = finish(
        start_batch(
            tmp_path, server, "--engine", "ray", "--ray-address", ray_cluster, "--jobs", "2"
        )
    )
    assert code == 0, err
    record = batch_record(tmp_path)
    assert record["engine"] == "ray" and record["ray_address"] == ray_cluster
    assert [(t["task"], t["state"], t["attempts"]) for t in record["tasks"]] == [
        ("t1", "done", 1),
        ("t2", "done", 1),
        ("t3", "done", 1),
    ]
    for task in ("t1", "t2", "t3"):
        assert (tmp_path / "batch" / "runs" / task / "report.md").exists()
        log = (tmp_path / "batch" / "logs" / f"{task}.log").read_text("utf-8")
        assert "== attempt on ray (" in log  # written on the node, in place: storage is shared
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text("utf-8"))
    assert summary["totals"]["states"] == {"done": 3}
    assert "on Ray (" in " ".join(err.split())


@pytest.mark.reliability
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_ray_worker_killed_mid_task_is_retried_and_resends_nothing(
    tmp_path: Path, server: ScriptedServer, ray_cluster: str
) -> None:
    make_cases(tmp_path, {"t1": "park"})
    log_path = tmp_path / "batch" / "logs" / "t1.log"
    seen: list[int] = []
    killed: list[int] = []
    runs = tmp_path / "batch" / "runs"

    def kill_worker(n: int, body: dict[str, Any]) -> bool:
        seen.append(n)
        if len(seen) != 2:
            return True
        worker = int(re.findall(r"ray worker pid (\d+)", log_path.read_text("utf-8"))[0])
        recorded.extend(trace_prompts(runs / "t1"))
        os.kill(worker, signal.SIGKILL)
        killed.append(worker)
        return False

    recorded: list[str] = []
    start = len(server.requests)
    server.on_request = kill_worker
    try:
        code, _, err = finish(
            start_batch(tmp_path, server, "--engine", "ray", "--ray-address", ray_cluster)
        )
    finally:
        server.on_request = None
    assert killed and code == 0, err
    task = batch_record(tmp_path)["tasks"][0]
    assert task["state"] == "done"
    log = log_path.read_text("utf-8")
    attempts = re.findall(
        r"== attempt on ray \(.*?ray worker pid (\d+)\).*?: (deepfolder run .*)", log
    )
    assert len(attempts) == 2 and int(attempts[0][0]) == killed[0] != int(attempts[1][0])
    assert attempts[1][1].startswith(f"deepfolder run --resume {runs / 't1'}")
    assert recorded, "the first attempt recorded no model call before the kill"
    sent_after = Counter(server.prompts(start + 2))
    assert not sent_after & Counter(recorded), "a recorded call was re-sent"


@pytest.mark.reliability
def test_ctrl_c_of_a_ray_batch_stops_its_tasks_and_resume_finishes(
    tmp_path: Path, server: ScriptedServer, ray_cluster: str
) -> None:
    make_cases(tmp_path, {"t1": "park"})
    asked = threading.Event()
    release = threading.Event()

    def hold(n: int, body: dict[str, Any]) -> bool:
        asked.set()
        release.wait(120)
        return False

    server.on_request = hold
    try:
        proc = start_batch(tmp_path, server, "--engine", "ray", "--ray-address", ray_cluster)
        assert asked.wait(120)
        proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc)
    finally:
        server.on_request = None
        release.set()
    assert code == 130, err
    task = batch_record(tmp_path)["tasks"][0]
    assert task["state"] == "interrupted"
    run = json.loads((tmp_path / "batch/runs/t1/run.json").read_text("utf-8"))
    assert run["status"] == "stopped"  # the cancelled Ray task gave its run SIGINT

    resumed = resume_batch(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert states(tmp_path) == {"t1": "done"}
    assert batch_record(tmp_path)["engine"] == "ray"  # resumed on the engine it ran on


def test_a_ray_task_without_shared_storage_sends_its_run_back(
    tmp_path: Path, server: ScriptedServer
) -> None:
    """The body of a Ray task on a node that cannot see the batch directory: it works in
    a temporary directory and returns the run directory and the log as bytes."""
    from deepfolder.runner.batch_ray import pack, run_on_node, unpack
    from deepfolder.runner.batch_workers import RATE_STATE

    cases = make_cases(tmp_path, {"t1": "library"})
    (tmp_path / "batch").mkdir()
    from deepfolder.cli import _settings_from, build_parser

    args = build_parser().parse_args(["batch", str(cases), *settings_args(tmp_path, server)])
    config = json.dumps(_settings_from(args).to_json_dict()).encode()
    state = {
        "task": "t1",
        "folder": str(cases / "t1"),
        "request": request_for(TOPICS["library"][0]),
        "request_from": "query.jsonl",
        "pass_request": True,
        "run_dir": str(tmp_path / "batch" / "runs" / "t1"),
        "multimodal": [],
    }
    spec = {
        "task": "t1",
        "state": state,
        "batch_dir": str(tmp_path / "batch"),
        "token": "not the driver's",  # as on a node where engine.json is not there
        "config": config,
        "run_archive": None,
        "timeout_s": 120,
        "grace_s": 5,
    }
    old_env = dict(os.environ)
    os.environ.update(subprocess_env())
    try:
        result = run_on_node(spec)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    assert result["code"] == 0, result["output"]
    assert not (tmp_path / "batch" / "runs").exists()  # nothing written in place
    assert not (tmp_path / "batch" / RATE_STATE).exists()
    back = tmp_path / "back"
    unpack(result["run_archive"], back)
    assert (back / "report.md").exists() and (back / "run.json").exists()
    assert b"== attempt on ray (" in result["log"]
    assert pack(back)[:2] == b"\x1f\x8b"


def test_the_ray_engine_without_ray_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepfolder.cli import main

    cases = tmp_path / "cases"
    (cases / "a").mkdir(parents=True)
    (cases / "a" / "query.txt").write_text("写报告", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    out = tmp_path / "batch"
    argv = ["batch", str(cases), "--out", str(out), "--engine", "ray", "--model", "vllm:m"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "pip install 'deepfolder[ray]'" in capsys.readouterr().err
    assert not out.exists()  # refused before any work
    assert main(["batch", str(cases), "--out", str(tmp_path / "b2"), "--ray-address", "x"]) == 2
    assert "--ray-address goes with --engine ray" in " ".join(capsys.readouterr().err.split())


def test_ray_task_resources_fit_the_largest_node() -> None:
    from deepfolder.runner.batch_ray import fit_to_nodes

    gib = 2**30
    nodes = [
        {"Alive": True, "Resources": {"CPU": 2.0, "memory": 8.0 * gib}},
        {"Alive": False, "Resources": {"CPU": 64.0, "memory": 512.0 * gib}},
    ]
    assert fit_to_nodes({"num_cpus": 4, "memory": 3 * gib}, nodes) == {
        "num_cpus": 2.0,
        "memory": 3 * gib,
    }
    assert fit_to_nodes({"num_cpus": 1, "memory": gib}, nodes) == {"num_cpus": 1, "memory": gib}
    with pytest.raises(BatchError, match=re.escape("needs 16.0 GiB of memory")):
        fit_to_nodes({"num_cpus": 1, "memory": 16 * gib}, nodes)
