"""Figures: saved automatically or by the code, described, and drawn with a CJK font."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfolder.analysis import PythonSandbox

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")

CHINESE_CHART = """\
df = pd.read_csv('sales.csv')
fig, ax = plt.subplots()
for region, part in df.groupby('region'):
    ax.plot(part['month'], part['sales'], marker='o', label=region)
ax.set_title('各区域月度销售额')
ax.set_xlabel('月份')
ax.set_ylabel('销售额（万元）')
ax.legend()
"""


def test_open_figure_is_saved_and_described(sandbox: PythonSandbox) -> None:
    result = sandbox.run(CHINESE_CHART)
    assert result.ok, result.error
    assert len(result.figures) == 1
    fig = result.figures[0]
    assert fig.path == "figures/fig_1.png" and fig.saved_by == "auto"
    assert fig.title == "各区域月度销售额"
    assert "月份" in fig.description and "销售额（万元）" in fig.description
    assert "华东" in fig.description  # legend entries
    png = sandbox.scratch_dir / fig.path
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # figures are closed after the call: the next call saves nothing again
    assert sandbox.run("len(plt.get_fignums())").value == "0"
    again = sandbox.run(CHINESE_CHART)
    assert [f.path for f in again.figures] == ["figures/fig_2.png"]


def test_figure_saved_by_the_code_is_not_saved_twice(sandbox: PythonSandbox) -> None:
    result = sandbox.run(
        "fig, ax = plt.subplots()\nax.bar(['甲', '乙'], [1, 2])\nax.set_title('对比')\n"
        "fig.savefig('figures/compare.png')"
    )
    assert result.ok, result.error
    assert [(f.path, f.saved_by, f.title) for f in result.figures] == [
        ("figures/compare.png", "code", "对比")
    ]
    assert result.files == ["figures/compare.png"]


@pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk is not installed")
def test_chinese_labels_render_with_the_cjk_font(sandbox: PythonSandbox) -> None:
    result = sandbox.run(
        CHINESE_CHART + "from matplotlib import font_manager as fm\n"
        "family = plt.rcParams['font.sans-serif'][0]\n"
        "(family, str(fm.findfont(fm.FontProperties(family=family))))"
    )
    assert result.ok, result.error
    assert result.value == repr(("Noto Sans CJK SC", str(CJK_FONT)))
    assert sandbox.isolation["font_path"] == str(CJK_FONT)
    assert "missing from font" not in result.stderr
    # control: the same labels with only DejaVu Sans do warn, so the check above can fail
    control = sandbox.run(
        "with plt.rc_context({'font.sans-serif': ['DejaVu Sans']}):\n"
        "    fig, ax = plt.subplots()\n"
        "    ax.set_title('各区域月度销售额')\n"
        "    fig.savefig('figures/control.png')"
    )
    assert "missing from font" in control.stderr
