"""The one end-to-end run of the embedded local model on the demo folder (slow)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from deepfolder.cli import main
from deepfolder.llm.packaged_weights import PACKAGED_MODELS, find_part_files
from spine_fixtures import RUN_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


def _missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (bash scripts/setup.sh)"
    try:
        find_part_files(PACKAGED_MODELS["qwen2.5-coder-1.5b"])
    except Exception as exc:
        return f"the packaged model is not installed: {exc}"
    return None


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_embedded_model_writes_a_cited_report_on_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "config.json"
    models = Path.home() / ".cache" / "deepfolder" / "models"  # reuse the joined GGUF
    config.write_text(json.dumps({"embedded": {"model_dir": str(models)}}), encoding="utf-8")
    code = main(
        [
            "run",
            str(DEMO),
            "--out",
            str(out),
            "--config",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    for name in RUN_OUTPUTS:
        assert (out / name).is_file(), name
    for line in (out / "trace.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line)
    for name in ("usage.json", "settings.json", "validation.json"):
        json.loads((out / name).read_text(encoding="utf-8"))
    report = (out / "report.md").read_text(encoding="utf-8")
    evidence = {
        json.loads(line)["segment"]["id"]
        for line in (out / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    }
    cited = set(re.findall(r"\(#(E[0-9a-f]{8})\)", report))
    assert cited, "the report cites evidence"
    assert cited <= evidence, "every citation resolves to evidence the run retrieved"
    assert re.search(r"\.pdf, 第\d页\]", report), "PDF citations carry real page numbers"
    usage = json.loads((out / "usage.json").read_text(encoding="utf-8"))
    assert usage["models"]["embedded:qwen2.5-coder-1.5b"]["output_tokens"] > 200
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert {c["name"] for c in validation["checks"]} >= {"length", "sections", "citations"}
