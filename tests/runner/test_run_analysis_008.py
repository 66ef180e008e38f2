"""Issue: data analysis in a run. A scripted fake model runs analysis code on case 008's
real CSVs through run_python, embeds the charts and cites the computed numbers."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from deepfolder.llm.fake import ScriptedModel, tool_call
from deepfolder.runner.run import run_task
from deepfolder.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT.parent / "shared" / "data" / "cases" / "008"


def _cells() -> list[str]:
    spec = importlib.util.spec_from_file_location(
        "scripts_008", ROOT / "tests/analysis/scripts_008.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.demo_analysis_script_008()


@pytest.mark.data
@pytest.mark.skipif(not CASE.is_dir(), reason="../shared/data/cases/008 is absent")
def test_scripted_analysis_run_on_case_008(tmp_path: Path) -> None:
    cells = _cells()
    observations: list[str] = []

    def after(i: int):  # type: ignore[no-untyped-def]
        def reply(messages, tools):  # type: ignore[no-untyped-def]
            observations.append(messages[-1]["content"])
            return tool_call("run_python", {"code": cells[i]}, id=f"cell{i}")

        return reply

    def write_report(messages, tools):  # type: ignore[no-untyped-def]
        observations.append(messages[-1]["content"])
        text = "\n".join(observations)
        figures = re.findall(r"!\[[^\]]*\]\(figures/[^)]+\)", text)
        analysis_ids = re.findall(r"\[(E[0-9a-f]{8})\][^\n]*analysis", text)
        ids = re.findall(r"E[0-9a-f]{8}", text)
        body = [
            "# 新冠疫情监测报告",
            "",
            "## （1）报告标题",
            "",
            "新冠疫情监测报告",
            "",
            "## （2）核心数据摘要",
            "",
            f"全球累计确诊与死亡数据由分析计算得出 [{(analysis_ids or ids)[0]}]。",
            "",
            "## （3）数据明细板块",
            "",
            *figures,
            "",
            "## （4）简要提示",
            "",
            f"数据来源为提供的两份CSV [{ids[-1]}]。",
        ]
        return "\n".join(body)

    model = ScriptedModel(
        [tool_call("run_python", {"code": cells[0]}, id="cell0"), after(1), after(2), write_report],
        name="fake:analyst",
    )
    settings = load_settings(
        overrides={
            "cache_dir": str(tmp_path / "cache"),
            "retrieval": {"dense": False},
            "validate": {"max_revisions": 0},
        },
        environ={},
    )
    out = tmp_path / "run"
    run_task(CASE, None, settings, out=out, model=model)
    report = (out / "report.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", report)
    assert len(images) >= 2
    for rel in images:
        assert (out / rel).is_file()
    captions = re.findall(r"!\[([^\]]*)\]", report)
    assert all(re.search(r"[\u4e00-\u9fff]", c) for c in captions)  # Chinese captions
    evidence = [
        json.loads(line)
        for line in (out / "evidence.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    kinds = {e["source"]["kind"] for e in evidence}
    assert {"figure", "analysis"} <= kinds
    cited = set(re.findall(r"\(#(E[0-9a-f]{8})\)", report))
    analysis_ids = {e["segment"]["id"] for e in evidence if e["source"]["kind"] == "analysis"}
    assert cited & analysis_ids, "the computed numbers must be cited to the computation"
    validation = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    figures_check = next(c for c in validation["checks"] if c["name"] == "figures")
    assert figures_check["passed"] is True
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') >= 2
