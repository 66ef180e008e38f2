"""Resume overhead: time from ``--resume`` to the first new model call, for a pipeline run
interrupted at its last section.

    python benchmarks/resume_overhead.py [--cases-dir ../shared/data/cases] [--case 002]
        [--no-dense] [--cache DIR]

Runs the case once uninterrupted, once interrupted (Ctrl-C) when the model is asked to
write the last section, then resumes it and reports where the time before the first new
model call went. The model is a deterministic fake local model (the pipeline policy, as
with the embedded model): the overhead is deepfolder's own work (checks, warm ingest,
recomputed tools, replay), which does not depend on how fast the model is; a real model
only adds its own load time. Reads the case folder read-only; writes into a temporary
directory (and ``--cache``, default a temporary one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deepfolder.llm.fake import FunctionModel
from deepfolder.runner.resume import ResumePlan, prepare_resume
from deepfolder.runner.run import run_task
from deepfolder.settings import load_settings

CASES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cases"
OUTPUTS = ["report.md", "validation.json", "evidence.jsonl", "comparison.txt"]


def section_writer(messages: list[dict[str, Any]], tools: Any) -> str:
    """Queries from the section's name; a section from the first excerpts it is given."""
    prompt = str(messages[-1]["content"])
    if "JSON" in prompt:
        words = re.findall(r"[\u4e00-\u9fff]{2,6}", prompt)[:3] or ["直播"]
        return json.dumps({"queries": words}, ensure_ascii=False)
    excerpts = re.findall(r"\[\d+\] （[^）]*）(.+)", prompt)
    return "".join(excerpts[:5]) or "材料中没有相关内容。"


class Interrupting(FunctionModel):
    def __init__(self, at_call: int | None) -> None:
        super().__init__(section_writer, is_local=True)
        self.at_call = at_call

    def _reply(self, messages: Any, tools: Any, kwargs: Any) -> Any:
        # self.calls already holds this call: its length is the call's number
        if self.at_call is not None and len(self.calls) == self.at_call:
            raise KeyboardInterrupt
        return super()._reply(messages, tools, kwargs)


def server_reply(body: dict[str, Any]) -> dict[str, Any]:
    """``section_writer`` behind an OpenAI-compatible server (for the process measurement)."""
    from scripted_server import completion

    schema = json.dumps(body.get("response_format") or {})
    if '"verdict"' in schema:
        return completion('{"verdict": "supported", "reason": "stated in the passage"}')
    if '"sections"' in schema:
        return completion('{"sections": ["背景", "分析", "结论"]}')
    if '"queries"' in schema:
        body["messages"][-1]["content"] += "\nJSON"
    return completion(section_writer(body["messages"], None))


def measure_process(folder: Path, tmp: Path, cache: Path, dense: bool) -> None:
    """The same interruption with real processes: ``deepfolder run`` SIGKILLed when it asks
    for the last section, then ``deepfolder run --resume``; overhead is from starting the
    resume process to the first request the model server receives from it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from scripted_server import ScriptedServer

    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFOLDER_")}
    env["DEEPFOLDER_ALLOW_MODEL_REQUESTS"] = "1"  # the server is on 127.0.0.1
    with ScriptedServer(server_reply, tmp / "requests.jsonl") as server:
        command = [sys.executable, "-m", "deepfolder.cli", "run", str(folder)]
        command += ["--model", "vllm:scripted", "--base-url", server.base_url]
        command += ["--policy", "pipeline", "--cache-dir", str(cache)]
        command += [] if dense else ["--no-dense"]
        done = tmp / "p-done"
        subprocess.run([*command, "--out", str(done)], env=env, capture_output=True, check=True)
        trace = [json.loads(x) for x in (done / "trace.jsonl").read_text().splitlines()]
        drafting = trace[: next(i for i, r in enumerate(trace) if r["kind"] == "final_answer")]
        last = [r for r in drafting if r["kind"] == "model_call"][-1]["prompt_sha256"]
        out = tmp / "p-run"
        proc = subprocess.Popen([*command, "--out", str(out)], env=env, stderr=subprocess.PIPE)

        def kill(n: int, body: dict[str, Any]) -> bool:
            if server.requests[n - 1]["prompt_sha256"] != last:
                return True
            server.on_request = None
            proc.send_signal(signal.SIGKILL)
            return False

        server.on_request = kill
        proc.communicate()
        first: list[float] = []

        def note_first(n: int, body: dict[str, Any]) -> bool:
            first.append(time.time())
            server.on_request = None
            return True

        server.on_request = note_first
        started = time.time()
        subprocess.run(
            [sys.executable, "-m", "deepfolder.cli", "run", "--resume", str(out)],
            env=env,
            capture_output=True,
            check=True,
        )
    same = all((out / n).read_bytes() == (done / n).read_bytes() for n in OUTPUTS)
    resumed = json.loads((out / "run.json").read_text())["resumes"][-1]
    print(
        f"process: `deepfolder run --resume` start → first request at the server: "
        f"{first[0] - started:.2f} s ({resumed['replayed_model_calls']} calls replayed; "
        f"inside the run {resumed['seconds_to_first_new_call']} s); outputs equal: {same}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases-dir", type=Path, default=CASES)
    parser.add_argument("--case", default="002")
    parser.add_argument("--no-dense", action="store_true")
    parser.add_argument("--cache", type=Path, help="index cache (default: a temporary one)")
    parser.add_argument(
        "--process", action="store_true", help="also measure with real processes and SIGKILL"
    )
    args = parser.parse_args(argv)
    folder = args.cases_dir / args.case
    if not folder.is_dir():
        print(f"skipped: {folder} is absent")
        return 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = load_settings(
            overrides={
                "cache_dir": str(args.cache or tmp / "cache"),
                "retrieval": {"dense": not args.no_dense},
                "agent": {"policy": "pipeline"},
            },
            environ={},
        )
        t = time.perf_counter()
        run_task(folder, None, settings, out=tmp / "done", model=Interrupting(None))
        full_s = time.perf_counter() - t
        trace = [json.loads(x) for x in (tmp / "done" / "trace.jsonl").read_text().splitlines()]
        drafting = trace[: next(i for i, r in enumerate(trace) if r["kind"] == "final_answer")]
        calls = [r for r in drafting if r["kind"] == "model_call"]
        # the call (1-based) that writes the draft's last section
        last_write = 1 + max(i for i, r in enumerate(calls) if r["purpose"].startswith("write"))
        total = sum(r["kind"] == "model_call" for r in trace)
        fresh_start = time.time()
        with contextlib.suppress(KeyboardInterrupt):  # the interruption we asked for
            run_task(folder, None, settings, out=tmp / "run", model=Interrupting(last_write))
        first = next(
            json.loads(x)
            for x in (tmp / "run" / "trace.jsonl").read_text().splitlines()
            if json.loads(x)["kind"] == "model_call"
        )
        plan = prepare_resume(tmp / "run")
        assert isinstance(plan, ResumePlan)
        checked = time.time() - plan.started
        run_task(plan.folder, None, plan.settings, model=Interrupting(None), resume=plan)
        outcome = plan.outcome()
        same = all(
            (tmp / "run" / n).read_bytes() == (tmp / "done" / n).read_bytes() for n in OUTPUTS
        )
        print(
            f"case {args.case}: {total} model calls, the draft's last section at call {last_write}"
        )
        print(f"uninterrupted run (ingest included, cold when the cache was empty): {full_s:.1f} s")
        print(f"a fresh run (warm index) → its first model call: {first['at'] - fresh_start:.2f} s")
        print(f"resume checks (run.json, settings, input sha256): {checked:.2f} s")
        print(
            f"resume → first new model call: {outcome['seconds_to_first_new_call']} s "
            f"({outcome['replayed_model_calls']} calls replayed, "
            f"{outcome['new_model_calls']} new)"
        )
        print(f"outputs equal to the uninterrupted run: {same}")
        if args.process:
            measure_process(folder, tmp, Path(settings.cache_path()), not args.no_dense)
    return 0


if __name__ == "__main__":
    sys.exit(main())
