from __future__ import annotations

from deepfolder.agent.pipeline import trim_to
from deepfolder.runner.revision import _requested_budget
from deepfolder.validate.length import count_length


def test_budget_from_validator_instructions() -> None:
    shorten = [
        "length 930 字, need 600–900 字: shorten this section by ~60 字 (keep the key facts)"
    ]
    assert _requested_budget(shorten, 250, 310) == 250
    expand = ["length 432 字, need 600–900 字: expand this section by ~120 字"]
    assert _requested_budget(expand, 250, 150) == 270
    assert _requested_budget(["citation [E12345678] does not support"], 250, 100) == 250


def test_trim_keeps_paragraphs_citations_and_figures() -> None:
    text = (
        "第一段第一句很长很长很长[E11111111]。第一段第二句也很长很长很长。\n\n"
        "![图1: 趋势](figures/fig_1.png)\n\n"
        "第二段第一句很长很长很长[E22222222]。第二段第二句也很长很长很长。"
    )
    out = trim_to(text, count_length(text, "字") - 10, "字")
    assert out.endswith("第二段第一句很长很长很长[E22222222]。")
    assert "![图1: 趋势](figures/fig_1.png)" in out and "\n\n" in out
    assert count_length(out, "字") <= count_length(text, "字") - 10


def test_trim_never_ends_on_an_announcement() -> None:
    text = "第一段说明了主要问题和原因。\n\n为了解决上述问题，需要采取以下措施：\n\n第一，设立辅导时段。第二，统一账号。"
    out = trim_to(text, count_length(text, "字") - 8, "字")
    assert not out.rstrip().endswith("：") and out.startswith("第一段")
