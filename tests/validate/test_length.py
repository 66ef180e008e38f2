from __future__ import annotations

import pytest

from deepfolder.validate.length import count_length, count_units, countable_text

REPORT = """# 报告标题

## （1）引言

直播电商在2023年增长了35%[E1234abcd]，COVID-19 影响**显著**。\
见[x.pdf, p. 3](#E5678ef01)和[文档: a.pdf, page 2]。

- 第一点 big data
- 第二点

![图1](figures/fig1.png)
*图1 确诊人数*

| 地区 | 人数 |
|---|---|
| 北京 | 2,000 |

## 参考来源

1. [E1234abcd] 直播.pdf, 第5页 — "直播电商在2023年增长了35%"
"""


def test_count_zi_exact() -> None:
    # 报告标题 4 + "1" 1 + 引言 2 = 7; 直播电商在 5 + 2023 1 + 年增长了 4 + 35 1 + COVID-19 1
    # + 影响显著 4 + 见和 2 = 18; 第一点 3 + big 1 + data 1 + 第二点 3 = 8; table 2+2+2+1 = 7
    assert count_length(REPORT, "字") == 7 + 18 + 8 + 7


def test_count_words_exact() -> None:
    # whitespace tokens with a letter, digit or CJK character, after the same exclusions
    assert count_length(REPORT, "words") == 12


def test_exclusions() -> None:
    prose = countable_text(REPORT)
    for gone in (
        "E1234abcd",
        "x.pdf",
        "a.pdf",
        "参考来源",
        "直播.pdf",
        "fig1",
        "确诊人数",
        "#",
        "**",
    ):
        assert gone not in prose, gone


def test_request_specific_reference_section_is_excluded() -> None:
    text = "## （5）建议\n\n加强监管。\n\n## （6）参考资料\n\n1. 某某文件，第3页\n2. 另一文件\n"
    assert count_length(text, "字", reference_title="参考资料") == 1 + 2 + 4
    assert count_length(text, "字") == 1 + 2 + 4  # 参考资料 is a known reference heading


def test_html_is_counted_like_markdown() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>不计入</title><style>p{}</style></head><body>"
        '<h1>标题</h1><p>你好 world<a href="#E1234abcd">x.pdf, 第3页</a>。</p>'
        '<figure><img src="f.png" alt="图"></figure>'
        '<h2>参考来源</h2><ol><li>[E1234abcd] x.pdf, 第3页 — "你好"</li></ol></body></html>'
    )
    assert count_length(html, "字") == 2 + 2 + 1


@pytest.mark.parametrize(
    ("text", "zi", "words"),
    [
        ("GPT-4 在 3.5% 的样本上出错", 2 + 7, 4),
        ("The model, trained on 2,000 examples, works.", 7, 7),
        ("一二三，四五六。", 6, 1),
    ],
)
def test_count_units(text: str, zi: int, words: int) -> None:
    assert count_units(text, "字") == zi
    assert count_units(text, "words") == words


def test_unknown_unit() -> None:
    with pytest.raises(ValueError, match="unknown length unit"):
        count_units("x", "pages")
