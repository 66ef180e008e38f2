"""Batch throughput: N tasks against a scripted OpenAI-compatible endpoint that answers
every request after a fixed latency, at several ``--jobs``, and on a local Ray cluster.

    python benchmarks/batch_throughput.py [--tasks 50] [--latency 1.0] [--jobs 1 8]
        [--ray] [--ray-cpus 8] [--json OUT]

Each task is a folder with one short Markdown note and its own request (the benchmark
layout: ``query.jsonl`` beside the folders). The endpoint is a threaded HTTP server on
127.0.0.1 that plays the agent: a search first, then a two-section report citing what the
search returned; every request is answered after ``--latency`` seconds. Support is judged
locally (``validate.support_judge = "local"``), so a task is two model requests. Each
configuration runs ``deepfolder batch`` as a real process with its own index cache (every
task ingests its folder) and reports wall time, tasks per minute, the throughput against
``--jobs 1``, and the per-task overhead: wall time per task at one job, less the time the
endpoint spent answering that task's requests (the process start, ingest, validation and
writing of a run). ``--ray`` runs the same tasks with ``--engine ray`` on a local cluster
this script starts (``ray start --head --block`` on 127.0.0.1 with ``--ray-cpus`` logical
CPUs, one per task) and stops (by its process group).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOPICS = ["图书馆", "公园", "公交", "医院", "学校", "菜市场", "体育馆", "博物馆", "剧院", "书店"]


def completion(content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }
    return json.dumps(body, ensure_ascii=False).encode()


def reply(body: dict[str, Any]) -> bytes:
    """Search once, then write both sections citing the first passage found."""
    messages = body.get("messages") or []
    text = json.dumps(messages, ensure_ascii=False)
    topic = next((t for t in TOPICS if t in text), "材料")
    observations = [str(m.get("content") or "") for m in messages if m.get("role") == "tool"]
    if body.get("tools") and not observations:
        call = {
            "id": "c0",
            "type": "function",
            "function": {"name": "search", "arguments": json.dumps({"query": topic})},
        }
        return completion(None, [call])
    ids = re.findall(r"E[0-9a-f]{8}", "\n".join(observations))
    cite = f" [{ids[0]}]" if ids else ""
    return completion(
        f"# {topic}报告\n\n## 背景\n\n青禾区{topic}的数量见材料{cite}。\n\n"
        f"## 发现\n\n2024年{topic}的使用情况见材料{cite}。\n"
    )


class Endpoint:
    """The scripted endpoint: every request answered after ``latency`` seconds."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.arrivals: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.arrivals.append(time.time())
                time.sleep(outer.latency)
                data = reply(body)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def make_cases(root: Path, count: int) -> Path:
    cases = root / "cases"
    cases.mkdir(parents=True)
    lines = []
    for n in range(count):
        task, topic = f"t{n:03d}", TOPICS[n % len(TOPICS)]
        (cases / task).mkdir()
        note = f"# {topic}\n\n青禾区共有{topic}{n + 3}家，2024年{topic}接待{n + 10}万人次。\n"
        (cases / task / "notes.md").write_text(note, encoding="utf-8")
        request = f"写一篇关于{topic}的简短报告，包含以下部分：（1）背景；（2）发现。标注来源。"
        lines.append(json.dumps({"task": task, "query": request}, ensure_ascii=False))
    (cases / "query.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"model": {"max_retries": 1, "timeout_s": 60}, "validate": {"support_judge": "local"}}
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return cases


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFOLDER_")}
    out["PYTHONPATH"] = str(REPO / "src")
    out["DEEPFOLDER_ALLOW_MODEL_REQUESTS"] = "1"
    out["NO_COLOR"] = "1"
    out["RAY_AUTH_MODE"] = "disabled"  # the cluster this script starts, on 127.0.0.1
    return out


def run_batch(
    root: Path, cases: Path, endpoint: Endpoint, name: str, extra: list[str]
) -> dict[str, Any]:
    out = root / f"batch-{name}"
    command = [
        *(sys.executable, "-m", "deepfolder.cli", "batch", str(cases), "--out", str(out)),
        *("--model", "vllm:bench-model", "--base-url", endpoint.base_url, "--no-dense"),
        *("--cache-dir", str(root / f"cache-{name}"), "--config", str(root / "config.json")),
        *extra,
    ]
    first = len(endpoint.arrivals)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    proc = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=3600)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the batch process and the workers it waited for (not Ray's workers: not our children)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    record = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    states = [t["state"] for t in record["tasks"]]
    requests = len(endpoint.arrivals) - first
    return {
        "name": name,
        "exit": proc.returncode,
        "tasks": len(states),
        "done": states.count("done"),
        "wall_s": round(wall, 1),
        "tasks_per_min": round(60 * len(states) / wall, 2),
        "requests": requests,
        "first_request_s": round(endpoint.arrivals[first] - started, 2) if requests else None,
        "cpu_s": round(cpu, 1),
        "mean_task_wall_s": round(sum(t["wall_s"] for t in record["tasks"]) / len(states), 2),
        "stderr_tail": proc.stderr[-400:] if proc.returncode else "",
    }


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together, so none is given twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@contextlib.contextmanager
def ray_cluster(cpus: int, log_path: Path) -> Any:
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
    command = [
        *(str(Path(sys.executable).parent / "ray"), "start", "--head", "--block"),
        *("--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(cpus)),
        *("--include-dashboard", "false", "--disable-usage-stats"),
        *("--object-store-memory", str(200 * 2**20)),
        *(x for flag, free in zip(flags, others, strict=True) for x in (flag, str(free))),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.5)
            time.sleep(3)
            yield f"127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--ray", action="store_true", help="also on a local Ray cluster")
    parser.add_argument("--ray-cpus", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    endpoint = Endpoint(args.latency)
    results = []
    with tempfile.TemporaryDirectory(prefix="deepfolder-batch-bench-") as tmp:
        root = Path(tmp)
        cases = make_cases(root, args.tasks)
        for jobs in args.jobs:
            results.append(run_batch(root, cases, endpoint, f"jobs{jobs}", ["--jobs", str(jobs)]))
            print(json.dumps(results[-1]), flush=True)
        if args.ray:
            with ray_cluster(args.ray_cpus, root / "ray.log") as address:
                extra = ["--engine", "ray", "--ray-address", address, "--jobs", str(args.ray_cpus)]
                results.append(run_batch(root, cases, endpoint, f"ray{args.ray_cpus}", extra))
                print(json.dumps(results[-1]), flush=True)
    base = results[0]
    latency_per_task = base["requests"] / base["tasks"] * args.latency
    print(
        f"\n{args.tasks} tasks, {args.latency:g} s per request, "
        f"{base['requests'] / base['tasks']:.1f} requests per task"
    )
    print(
        "| configuration | wall | tasks/min | throughput vs first | mean task wall | "
        "first request after | CPU (batch + workers) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ratio = base["wall_s"] / r["wall_s"]
        cpu = f"{r['cpu_s']} s" if not r["name"].startswith("ray") else "(Ray's workers)"
        print(
            f"| {r['name']} ({r['done']}/{r['tasks']} done) | {r['wall_s']} s | "
            f"{r['tasks_per_min']} | {ratio:.2f}× | {r['mean_task_wall_s']} s | "
            f"{r['first_request_s']} s | {cpu} |"
        )
    overhead = base["wall_s"] / base["tasks"] - latency_per_task
    print(
        f"per-task overhead at {results[0]['name']}: {overhead:.2f} s "
        f"(wall per task {base['wall_s'] / base['tasks']:.2f} s less {latency_per_task:.1f} s "
        "of endpoint latency)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
