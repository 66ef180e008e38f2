"""The embedded model's thread choice under a momentary CPU spike and under steady load.

    python benchmarks/embedded_threads.py [--calls 4] [--tokens 64] [--spike 0.8]
                                          [--scenarios spike steady none]
                                          [--rules once per-call 1 2] [--out results.json]

Compares two rules for llama.cpp's thread count:

- ``once``: the rule before issue 11 — one 0.3 s reading of the machine's busy cores when
  the model is loaded, kept for the whole run;
- ``per-call``: :func:`deepfolder.llm.embedded.default_threads` — before every call, the
  median of three 0.1 s readings with this process's own CPU use left out.

``--rules 1 2`` add fixed thread counts, to see which count was right.

Scenarios: ``spike`` — every core is taken by a burner process for ``--spike`` seconds
just as the first decision is made, then released; ``steady`` — one core is taken by a
burner for the whole scenario; ``none`` adds nothing. Each rule then makes ``--calls`` chat calls that generate
up to ``--tokens`` tokens (temperature 0, so both rules generate the same text). Reported:
the threads chosen per call, generated tokens per second over the calls (decision time
included) and the load average at the start, since other work shares the machine.
Needs llama-cpp-python and the qwen2.5-coder-1.5b part packages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deepfolder.llm import embedded
from deepfolder.llm.base import ModelConfigError
from deepfolder.settings import Settings

BURN = "import time, sys\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass\n"
PROMPT = "请用中文写一段约两百字的介绍：光伏发电的原理、成本下降和面临的挑战。"


def burners(count: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that each keep one core busy for ``seconds``."""
    return [subprocess.Popen([sys.executable, "-c", BURN, str(seconds)]) for _ in range(count)]


def threads_once() -> int:
    """The rule before issue 11: busy cores from one 0.3 s reading at load, cores capped
    at 4 before the busy ones were subtracted."""
    idle0, total0 = embedded._cpu_jiffies()
    time.sleep(0.3)
    idle1, total1 = embedded._cpu_jiffies()
    cores = os.cpu_count() or 1
    busy = (1 - (idle1 - idle0) / max(1, total1 - total0)) * cores
    capped = min(4, cores)
    return max(1, min(capped, round(capped - busy)))


def run_rule(rule: str, scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()
    steady = burners(1, 3600) if scenario == "steady" else []
    try:
        spike = burners(os.cpu_count() or 1, args.spike) if scenario == "spike" else []
        fixed = threads_once() if rule == "once" else (int(rule) if rule.isdigit() else None)
        settings = Settings.model_validate(
            {"embedded": {"n_ctx": 2048, "n_threads": fixed}, "model": {"temperature": 0.0}}
        )
        model = embedded.EmbeddedModel(settings)
        chosen, tokens = [], 0
        t0 = time.perf_counter()
        for i in range(args.calls):
            reply = model.chat(
                [{"role": "user", "content": f"（第{i + 1}段）{PROMPT}"}], max_tokens=args.tokens
            )
            chosen.append(model.n_threads)
            tokens += reply.usage.output_tokens
        seconds = time.perf_counter() - t0
        for p in spike:
            p.wait()
    finally:
        for p in steady:
            p.kill()
            p.wait()
    return {
        "scenario": scenario,
        "rule": rule,
        "threads": chosen,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / seconds, 2),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--spike", type=float, default=0.8, help="seconds of the spike")
    parser.add_argument(
        "--scenarios", nargs="+", default=["spike", "steady"], choices=["spike", "steady", "none"]
    )
    parser.add_argument("--rules", nargs="+", default=["once", "per-call"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    try:
        # Load the weights once before measuring (later models share the loaded Llama).
        _ = embedded.EmbeddedModel(Settings.model_validate({"embedded": {"n_ctx": 2048}})).llama
    except ModelConfigError as exc:
        print(f"skipped: {exc}")
        return 0
    results = []
    for scenario in args.scenarios:
        for rule in args.rules:
            time.sleep(2)  # let the previous scenario's burners and threads settle
            result = run_rule(rule, scenario, args)
            print(json.dumps(result, ensure_ascii=False), flush=True)
            results.append(result)
    if args.out:
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
