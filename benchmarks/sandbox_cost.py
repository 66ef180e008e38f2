"""Measure the analysis sandbox: escape attempts blocked, start-up time, cost per call.

    PYTHONPATH=src python benchmarks/sandbox_cost.py [--starts 3] [--calls 20] [--out r.json]

Run it against other sources (e.g. an older commit unpacked with ``git archive``) by
pointing PYTHONPATH there: the script uses only ``PythonSandbox``'s public API. Each
escape cell of ``tests/analysis/test_escapes.py`` runs in a fresh sandbox, so one that
got through (a read-write remount, a killed decoy) cannot change the verdict of the next;
a cell counts as blocked when it printed no ``ESCAPED``, left the input folder's hash,
/tmp, a 127.0.0.1 server and a decoy host process untouched, and never showed the planted
key. Numbers go to docs/benchmarks.md ("Analysis sandbox").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deepfolder.analysis import PythonSandbox, SandboxLimits

TESTS = Path(__file__).resolve().parents[1] / "tests" / "analysis"


def _escape_module() -> Any:
    sys.path.insert(0, str(TESTS))  # analysis_helpers, imported by the test module
    spec = importlib.util.spec_from_file_location("test_escapes", TESTS / "test_escapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _folder(root: Path, csv: str) -> Path:
    folder = root / "folder"
    folder.mkdir()
    (folder / "sales.csv").write_text(csv, encoding="utf-8")
    return folder


def measure_cost(root: Path, csv: str, starts: int, calls: int) -> dict[str, Any]:
    folder = _folder(root, csv)
    start_s, call_s, pandas_s = [], [], []
    for i in range(starts):
        sandbox = PythonSandbox(folder, ["sales.csv"], root / f"cost{i}" / "scratch")
        t = time.perf_counter()
        sandbox.start()
        start_s.append(time.perf_counter() - t)
        if i == 0:
            for _ in range(calls):
                t = time.perf_counter()
                sandbox.run("1 + 1")
                call_s.append(time.perf_counter() - t)
            for _ in range(calls):
                t = time.perf_counter()
                sandbox.run("pd.read_csv('sales.csv').groupby('region').sales.sum()")
                pandas_s.append(time.perf_counter() - t)
        sandbox.close()
    return {
        "start_s": [round(x, 3) for x in start_s],
        "start_median_s": round(statistics.median(start_s), 3),
        "empty_call_median_ms": round(1000 * statistics.median(call_s), 1),
        "pandas_call_median_ms": round(1000 * statistics.median(pandas_s), 1),
    }


def count_escapes(root: Path, escapes: Any) -> dict[str, Any]:
    folder = _folder(root, escapes.SALES_CSV)
    os.environ["DEEPFOLDER_API_KEY"] = escapes.SECRET
    os.environ["OPENAI_API_KEY"] = escapes.SECRET
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": escapes.SECRET}
    decoy = subprocess.Popen(["sleep", "900"], env=env)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    verdicts: dict[str, str] = {}
    try:
        cells = escapes._escapes(srv.getsockname()[1], decoy.pid)
        for n, (name, code) in enumerate(cells.items()):
            if decoy.poll() is not None:  # an earlier cell killed it: a fresh one
                decoy = subprocess.Popen(["sleep", "900"], env=env)
                cells = escapes._escapes(srv.getsockname()[1], decoy.pid)
                code = cells[name]
            before = escapes.folder_digest(folder)
            limits = SandboxLimits(wall_s=30, cpu_s=20, memory_mb=1536)
            with PythonSandbox(folder, ["sales.csv"], root / f"esc{n}" / "scratch", limits) as sb:
                result = sb.run(escapes.GUARD_OFF + code)
            output = escapes._output(result)
            why = []
            if "ESCAPED" in output:
                why.append(next(ln for ln in output.splitlines() if "ESCAPED" in ln)[:120])
            if escapes.SECRET in output:
                why.append("the planted key is in the output")
            if escapes.folder_digest(folder) != before:
                why.append("the input folder changed")
                (folder / "sales.csv").write_text(escapes.SALES_CSV, encoding="utf-8")
                for extra in folder.iterdir():
                    if extra.name != "sales.csv":
                        extra.unlink()
            if Path(escapes.TMP_MARKER).exists():
                why.append("wrote into /tmp")
                Path(escapes.TMP_MARKER).unlink()
            if escapes._connections(srv):
                why.append("reached 127.0.0.1")
            if decoy.poll() is not None:
                why.append("killed a host process")
            verdicts[name] = "blocked" if not why else "ESCAPED: " + "; ".join(why)
            print(f"{name:28s} {verdicts[name]}", flush=True)
    finally:
        decoy.kill()
        srv.close()
    blocked = sum(v == "blocked" for v in verdicts.values())
    return {"tried": len(verdicts), "blocked": blocked, "verdicts": verdicts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--skip-escapes", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    escapes = _escape_module()
    import deepfolder.analysis.sandbox as sandbox_module

    results: dict[str, Any] = {"sandbox_module": sandbox_module.__file__}
    with tempfile.TemporaryDirectory(prefix="sandbox-cost-") as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        results["cost"] = measure_cost(root / "a", escapes.SALES_CSV, args.starts, args.calls)
        print(json.dumps(results["cost"]), flush=True)
        if not args.skip_escapes:
            (root / "b").mkdir()
            results["escapes"] = count_escapes(root / "b", escapes)
            print(
                f"escapes tried {results['escapes']['tried']}, "
                f"blocked {results['escapes']['blocked']}"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
