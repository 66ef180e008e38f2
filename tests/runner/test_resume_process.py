"""``deepfolder run`` as a real process against a scripted OpenAI-compatible server on
127.0.0.1: killed with SIGKILL at several points, interrupted with Ctrl-C, cut off by an
endpoint that stays down; ``--resume`` must finish each run with exactly the outputs of
an uninterrupted one, and the server's request log must show that no model call the
trace held was sent again.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.test_resume import COMPARED_OUTPUTS
from scripted_server import ScriptedServer, completion, subprocess_env, tool_call

pytestmark = pytest.mark.reliability

REQUEST = "写一篇300至500字的社区图书馆报告，包括背景和发现两个部分，标注来源。"
NOTES = (
    "# 青禾区社区图书馆\n\n青禾区共有社区图书馆14家，2023年起开通电子书借阅服务。\n\n"
    "2024年全区电子书借阅量为8.6万册次，比2023年增长69%。\n\n"
    "建议在每家图书馆设置每周一次的数字助老辅导时段，帮助老年读者使用电子书。\n"
)
SURVEY = (
    "读者调查：60岁以上读者占借阅人数的31%，其中多数希望有人指导使用电子书。\n\n"
    "夜间开放的分馆借阅量比其他分馆高出两成。\n"
)


def scripted_agent(body: dict[str, Any]) -> dict[str, Any]:
    """An agent that searches twice, writes a draft too short for the request (so the
    run revises), rewrites sections longer, and finds every citation supported."""
    messages = body["messages"]
    if "response_format" in body:
        return completion('{"verdict": "supported", "reason": "the passage states it"}')
    if body.get("tools"):
        observations = [str(m.get("content") or "") for m in messages if m["role"] == "tool"]
        if len(observations) < 2:
            query = ["电子书借阅量", "老年读者 数字助老"][len(observations)]
            n = len(observations)
            return completion(None, tool_calls=[tool_call("search", {"query": query}, f"c{n}")])
        ids = list(dict.fromkeys(re.findall(r"E[0-9a-f]{8}", "\n".join(observations))))
        return completion(
            f"# 社区图书馆报告\n\n## 背景\n\n全区电子书借阅量增长明显 [{ids[0]}]。\n\n"
            f"## 发现\n\n老年读者需要数字助老辅导 [{ids[-1]}]。\n"
        )
    prompt = str(messages[-1].get("content") or "")
    ids = list(dict.fromkeys(re.findall(r"E[0-9a-f]{8}", prompt)))
    heading = re.search(r"Section heading: (.+)", prompt)
    topic = heading.group(1) if heading else ""
    sentences = [
        f"{topic}：材料第{k}处显示，社区图书馆的电子书借阅服务持续扩展，读者结构随之变化 [{i}]。"
        for k, i in enumerate(ids[:3], 1)
    ]
    return completion("".join(sentences) * 3)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedServer]:
    log = tmp_path_factory.mktemp("server") / "requests.jsonl"
    with ScriptedServer(scripted_agent, log) as s:
        yield s


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder, the shared cache and the config every run of this module uses."""
    root = tmp_path_factory.mktemp("resume")
    folder = root / "folder"
    folder.mkdir()
    (folder / "notes.md").write_text(NOTES, encoding="utf-8")
    (folder / "survey.txt").write_text(SURVEY, encoding="utf-8")
    # one quick retry, so the endpoint-down test does not wait through five backoffs
    config = {"model": {"max_retries": 1, "timeout_s": 30}}
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_run(
    workspace: Path, server: ScriptedServer, out: Path, parent_ignores_sigint: bool = False
) -> subprocess.Popen[str]:
    command = [
        *(sys.executable, "-m", "deepfolder.cli", "run", str(workspace / "folder"), REQUEST),
        *("--model", "vllm:test-model", "--base-url", server.base_url),
        *("--out", str(out), "--cache-dir", str(workspace / "cache"), "--no-dense"),
        *("--config", str(workspace / "config.json")),
    ]
    return subprocess.Popen(
        command,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job starts with SIGINT ignored (`cmd &`, a batch under nohup)
        preexec_fn=_ignore_sigint if parent_ignores_sigint else None,
    )


def resume(out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "deepfolder.cli", "run", "--resume", str(out)]
    return subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr


def recorded_prompts(out: Path) -> list[str]:
    trace = out / "trace.jsonl"
    lines = trace.read_text("utf-8").splitlines() if trace.exists() else []
    records = [json.loads(line) for line in lines]
    return [r["prompt_sha256"] for r in records if r["kind"] == "model_call"]


@pytest.fixture(scope="module")
def baseline(workspace: Path, server: ScriptedServer) -> tuple[Path, list[str]]:
    """An uninterrupted run and the requests it sent."""
    server.on_request = None
    start = len(server.requests)
    out = workspace / "baseline"
    code, stderr = finish(start_run(workspace, server, out))
    assert code == 0, stderr
    sent = server.prompts(start)
    trace = [json.loads(line) for line in (out / "trace.jsonl").read_text("utf-8").splitlines()]
    kinds = [r["kind"] for r in trace]
    assert "revision" in kinds, "the scripted run must revise, to interrupt revisions"
    assert recorded_prompts(out) == sent
    return out, sent


def assert_same_outputs(out: Path, done: Path) -> None:
    for name in COMPARED_OUTPUTS:
        assert (out / name).read_bytes() == (done / name).read_bytes(), name
    assert json.loads((out / "run.json").read_text("utf-8"))["status"] == "finished"


def revision_request(n: int, body: dict[str, Any]) -> bool:
    return str(body["messages"][-1].get("content") or "").startswith("Revise one section")


@pytest.mark.parametrize(
    "kill_at",
    ["ingest", 2, 3, "first revision", 9],
    ids=["ingest", "drafting-search", "drafting-answer", "revision", "final-judging"],
)
def test_sigkill_then_resume_sends_no_recorded_call_again(
    workspace: Path,
    server: ScriptedServer,
    baseline: tuple[Path, list[str]],
    kill_at: str | int,
) -> None:
    done, expected = baseline
    out = workspace / f"killed-{kill_at}".replace(" ", "-")
    start = len(server.requests)
    proc = start_run(workspace, server, out)

    def kill(n: int, body: dict[str, Any]) -> bool:
        number = n - start
        hit = revision_request(number, body) if kill_at == "first revision" else number == kill_at
        if hit and server.on_request is not None:
            server.on_request = None
            proc.send_signal(signal.SIGKILL)
            return False
        return True

    if kill_at == "ingest":
        deadline = time.time() + 60
        while not (out / "run.json").exists() and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    else:
        server.on_request = kill
    code, _ = finish(proc)
    server.on_request = None
    assert code == -signal.SIGKILL
    assert not (out / "report.md").exists()
    killed_sent = server.prompts(start)
    recorded = recorded_prompts(out)
    # the kill came while the next call was unanswered: every earlier call is in the trace
    assert killed_sent[: len(recorded)] == recorded
    # (killed in ingest: no request yet, or at most the first one unanswered)
    assert len(killed_sent) - len(recorded) == 1 or (kill_at == "ingest" and not recorded)

    start = len(server.requests)
    resumed = resume(out)
    assert resumed.returncode == 0, resumed.stderr
    sent_again = Counter(server.prompts(start))
    # what the resumed run sent is exactly what the trace did not hold
    assert sent_again == Counter(expected) - Counter(recorded)
    assert_same_outputs(out, done)
    assert f"{len(recorded)} model call(s) replayed from the trace" in resumed.stderr

    again = resume(out)  # a finished run says so and changes nothing
    assert again.returncode == 0 and "already finished" in again.stderr
    assert len(server.requests) == start + sum(sent_again.values())


@pytest.mark.parametrize("parent_ignores_sigint", [False, True], ids=["foreground", "background"])
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(
    workspace: Path,
    server: ScriptedServer,
    baseline: tuple[Path, list[str]],
    parent_ignores_sigint: bool,
) -> None:
    """Also when started as a shell's background job, which ignores SIGINT: the run
    used to go on to the end (a batch's timeout and the viewer's cancel send SIGINT)."""
    done, expected = baseline
    out = workspace / f"ctrl-c-{parent_ignores_sigint}"
    start = len(server.requests)
    proc = start_run(workspace, server, out, parent_ignores_sigint)

    def interrupt(n: int, body: dict[str, Any]) -> bool:
        if n - start == 3:
            server.on_request = None
            proc.send_signal(signal.SIGINT)
            # keep the request open: a closed connection let the client retry (and the
            # retry be answered) before the signal arrived
            time.sleep(3)
            return False
        return True

    server.on_request = interrupt
    code, stderr = finish(proc)
    assert code == 130, stderr
    assert f"deepfolder run --resume {out}" in " ".join(stderr.split())
    for line in (out / "trace.jsonl").read_text("utf-8").splitlines():
        json.loads(line)  # complete up to the last step
    assert recorded_prompts(out) == expected[:2]
    assert json.loads((out / "run.json").read_text("utf-8"))["status"] == "stopped"

    start = len(server.requests)
    resumed = resume(out)
    assert resumed.returncode == 0, resumed.stderr
    assert Counter(server.prompts(start)) == Counter(expected[2:])
    assert_same_outputs(out, done)


def test_an_endpoint_that_stays_down_exits_3_and_resumes_when_back(
    workspace: Path, server: ScriptedServer, baseline: tuple[Path, list[str]]
) -> None:
    done, expected = baseline
    out = workspace / "down"
    start = len(server.requests)

    def go_down(n: int, body: dict[str, Any]) -> bool:
        if revision_request(n - start, body):
            server.down = True
        return True

    server.on_request = go_down
    try:
        code, stderr = finish(start_run(workspace, server, out))
    finally:
        server.on_request = None
        server.down = False
    assert code == 3, stderr
    flat = " ".join(stderr.split())
    assert "model error" in flat and "HTTP 503" in flat
    assert f"deepfolder run --resume {out}" in flat
    recorded = recorded_prompts(out)
    assert recorded == expected[: len(recorded)] and 0 < len(recorded) < len(expected)

    start = len(server.requests)
    resumed = resume(out)
    assert resumed.returncode == 0, resumed.stderr
    assert Counter(server.prompts(start)) == Counter(expected) - Counter(recorded)
    assert_same_outputs(out, done)
