"""run_python as the agent calls it: evidence, figures in the run directory, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from analysis_helpers import EmptyIndex

from deepfolder.analysis import SandboxLimits
from deepfolder.records import EVIDENCE_ID_PATTERN
from deepfolder.settings import Settings
from deepfolder.tools.base import ToolContext
from deepfolder.tools.python import run_python


@pytest.fixture
def ctx(data_dir: Path, tmp_path: Path) -> Iterator[ToolContext]:
    context = ToolContext(
        index=EmptyIndex(),  # type: ignore[arg-type]
        settings=Settings(),
        folder=data_dir,
        run_dir=tmp_path / "run",
        data_files=["sales.csv"],
        language="zh",
        sandbox_limits=SandboxLimits(wall_s=20, cpu_s=10, memory_mb=1536),
    )
    yield context
    if context.sandbox is not None:
        context.sandbox.close()


def test_schema_and_prompt() -> None:
    spec = run_python.spec()["function"]
    assert spec["parameters"]["required"] == ["code"]
    for needed in ("pandas", "sklearn", "statsmodels", "scratch", "figures/", "Chinese"):
        assert needed in spec["description"]


def test_printed_result_becomes_citable_evidence(ctx: ToolContext) -> None:
    out = run_python(
        ctx,
        {
            "code": "# 各区域销售额合计\ndf = pd.read_csv('sales.csv')\n"
            "print(df.groupby('region').sales.sum())"
        },
    )
    assert not out.is_error, out.text
    assert "华东    255" in out.text
    assert out.text.rstrip().endswith("]") and "[status:" in out.text
    [ev] = out.evidence
    assert re.fullmatch(EVIDENCE_ID_PATTERN, ev.id)
    assert ev.source.kind == "analysis" and ev.source.id == "run:analysis/1"
    assert ev.source.title == "各区域销售额合计"
    assert "255" in ev.segment.text and "191" in ev.segment.text
    assert ctx.seen[ev.id] is ev and ctx.created[ev.id] is ev
    assert ctx.resolve(ev.id) is ev
    assert f"[{ev.id}]" in out.text
    assert out.files == ["analysis/analysis_1.md"]
    record = (ctx.run_dir or Path()) / "analysis/analysis_1.md"
    assert "groupby" in record.read_text(encoding="utf-8")


def test_figure_is_copied_registered_and_embeddable(ctx: ToolContext) -> None:
    out = run_python(
        ctx,
        {
            "code": "fig, ax = plt.subplots()\nax.bar(['华东', '华南'], [255, 191])\n"
            "ax.set_title('区域销售额')\nax.set_ylabel('万元')\nfig.savefig('figures/sales.png')"
        },
    )
    assert not out.is_error, out.text
    [ev] = out.evidence  # nothing printed: only the figure
    assert ev.source.kind == "figure"
    assert ev.source.id == "run:figures/sales.png" and ev.source.path == "figures/sales.png"
    assert ev.source.title == "区域销售额"
    assert "万元" in ev.segment.text and "figures/sales.png" in ev.segment.text
    assert "![图1: 区域销售额](figures/sales.png)" in out.text
    assert ctx.seen[ev.id] is ev
    run_dir = ctx.run_dir or Path()
    assert (run_dir / "figures/sales.png").is_file()
    assert "figures/sales.png" in out.files
    assert all((run_dir / f).exists() for f in out.files)
    second = run_python(ctx, {"code": "plt.plot([1, 2])\nplt.title('趋势')"})
    assert "![图2: 趋势](figures/fig_1.png)" in second.text


def test_errors_are_observations_and_the_run_continues(ctx: ToolContext) -> None:
    out = run_python(ctx, {"code": "open(DATA_DIR + '/sales.csv', 'w')"})
    assert out.is_error
    assert "error (forbidden)" in out.text and "scratch" in out.text
    assert out.evidence == []
    assert "session is intact" in out.text
    ok = run_python(ctx, {"code": "print(1 + 1)"})
    assert not ok.is_error and "2" in ok.text


def test_lost_state_is_announced(ctx: ToolContext) -> None:
    ctx.sandbox_limits = SandboxLimits(wall_s=2, cpu_s=10, memory_mb=1536)
    timeout = run_python(ctx, {"code": "import time\ntime.sleep(30)"})
    assert timeout.is_error and "error (timeout)" in timeout.text
    assert "state is lost" in timeout.text
    after = run_python(ctx, {"code": "print('back')"})
    assert not after.is_error
    assert after.text.startswith("note: this ran in a fresh Python session")
