"""Real analysis on case 008's COVID-19 CSVs through the tool (skipped without the data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from analysis_helpers import EmptyIndex, folder_digest
from scripts_008 import CONFIRMED, DEATHS, demo_analysis_script_008

from deepfolder.analysis import SandboxLimits
from deepfolder.settings import Settings
from deepfolder.tools.base import ToolContext
from deepfolder.tools.python import run_python

CASE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cases" / "008"

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not (CASE / CONFIRMED).exists(), reason="../shared/data is absent"),
]


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ToolContext]:
    context = ToolContext(
        index=EmptyIndex(),  # type: ignore[arg-type]
        settings=Settings(),
        folder=CASE.resolve(),
        run_dir=tmp_path / "run",
        data_files=[CONFIRMED, DEATHS],
        language="zh",
        sandbox_limits=SandboxLimits(wall_s=90, cpu_s=60),
    )
    yield context
    if context.sandbox is not None:
        context.sandbox.close()


def test_demo_script_produces_charts_and_citable_numbers(ctx: ToolContext) -> None:
    before = folder_digest(CASE)
    outputs = [run_python(ctx, {"code": cell}) for cell in demo_analysis_script_008()]
    for out in outputs:
        assert not out.is_error, out.text

    # the numbers are real: recompute the global total independently
    confirmed = pd.read_csv(CASE / CONFIRMED)
    total = int(confirmed.iloc[:, 4:].sum().iloc[-1])
    assert f"全球累计确诊 {total}" in outputs[0].text
    table_ev = [ev for ev in outputs[0].evidence if ev.source.kind == "analysis"]
    assert len(table_ev) == 1 and str(total) in table_ev[0].segment.text
    assert "US" in table_ev[0].segment.text and "病死率%" in table_ev[0].segment.text

    figures = [ev for out in outputs for ev in out.evidence if ev.source.kind == "figure"]
    assert len(figures) >= 2
    titles = {ev.source.title for ev in figures}
    assert {"全球每月新增确诊病例", "新冠死亡人数与病死率对比"} <= titles
    run_dir = ctx.run_dir or Path()
    for ev in figures:
        assert (run_dir / ev.source.path).is_file()
        assert ctx.seen[ev.id] is ev
        assert f"![{ev.source.meta['label']}: {ev.source.title}]({ev.source.path})" in "".join(
            o.text for o in outputs
        )
    assert all("missing from font" not in o.text for o in outputs)
    assert folder_digest(CASE) == before
