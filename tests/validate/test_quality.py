from __future__ import annotations

import io

import pytest
from rich.console import Console

from deepfolder.records import Evidence
from deepfolder.request_model import parse_request
from deepfolder.validate.checks import validate_report
from deepfolder.validate.command import check_run_dir
from deepfolder.validate.document import reference_section_lines
from deepfolder.validate.repetition import (
    remove_repeated_sentences,
    repeated_sentences,
    report_sentences,
)

from .conftest import QUERIES, real_queries
from .reports import REQUEST, good_report

REPEATED = "2023年我国直播电商交易规模达4.9万亿元，同比增长35%"


def _validate(text: str, by_id, seen, request: str = REQUEST):
    return validate_report(text, parse_request(request), resolve=by_id.get, seen_ids=seen)


def test_good_report_passes_the_quality_checks(evidence: dict[str, Evidence], by_id, seen) -> None:
    report = _validate(good_report(evidence), by_id, seen)
    for name in ("request_shape", "repetition", "placeholder_text"):
        check = report.check(name)
        assert check is not None and check.passed is True, check
    assert report.check("table") is None  # the request asks for none
    user = report.check("user_material")
    assert user is not None and user.passed is None  # the request names no material of its own


# --- repetition -------------------------------------------------------------------------


def test_repeated_sentences_fail_with_the_pair(evidence, by_id, seen) -> None:
    p5 = evidence["pdf5"].id
    text = good_report(evidence).replace(
        "## （3）案例分析\n\n",
        f"## （3）案例分析\n\n2023年，我国直播电商的交易规模达4.9万亿元，同比增长35%[{p5}]。",
    )
    report = _validate(text, by_id, seen)
    check = report.check("repetition")
    assert check is not None and check.failed
    assert check.measured == "1 repeated sentences"
    assert check.details[0].startswith("line 13 repeats line 5")
    assert "repetition" in " ".join(report.failures)


def test_near_repeats_are_found_and_different_sentences_are_not() -> None:
    md = (
        "# 报告\n\n## 一\n\n"
        f"{REPEATED}[E1234abcd]。平台责任的认定是监管部门近年来关注的重点问题之一。\n\n"
        "## 二\n\n"
        f"- {REPEATED}。[E2234abcd]\n\n"  # same words, citation after the full stop
        "平台责任的认定是学术界近年来长期争论的核心理论问题。\n\n"  # shares words only
        "详见下表。详见下表。\n"  # short formulae may recur
    )
    pairs = repeated_sentences(md)
    assert [(a.line, b.line) for a, b, _ in pairs] == [(4, 8)]
    assert pairs[0][2] == pytest.approx(1.0)


def test_remove_repeated_sentences_keeps_the_first_saying() -> None:
    md = (
        "# 报告\n\n## 一\n\n"
        f"{REPEATED}[E1234abcd]。平台责任的认定是监管部门近年来关注的重点问题之一。\n\n"
        "## 二\n\n"
        f"{REPEATED}。[E2234abcd]\n\n"
        f"主播的虚假宣传可能使其被认定为广告发布者[E3234abcd]。{REPEATED}[E1234abcd]。结尾另有新的内容。\n\n"
        '## 参考资料\n\n1. [E1234abcd] x.pdf — "…"\n1. [E1234abcd] x.pdf — "…"\n'
    )
    text, removed = remove_repeated_sentences(md, reference_section_lines(md))
    assert removed == [f"{REPEATED}。", f"{REPEATED}。"]
    assert text == (
        "# 报告\n\n## 一\n\n"
        f"{REPEATED}[E1234abcd]。平台责任的认定是监管部门近年来关注的重点问题之一。\n\n"
        "## 二\n\n"
        "主播的虚假宣传可能使其被认定为广告发布者[E3234abcd]。结尾另有新的内容。\n\n"
        '## 参考资料\n\n1. [E1234abcd] x.pdf — "…"\n1. [E1234abcd] x.pdf — "…"\n'
    )
    assert remove_repeated_sentences(text) == (text, [])


def test_english_repeats() -> None:
    first = "The platform must remove infringing listings promptly after a valid notice"
    md = f"# R\n\n## A\n\n{first} [E1234abcd]. Short one.\n\n## B\n\n{first.lower()}. Other words follow here.\n"
    text, removed = remove_repeated_sentences(md)
    assert removed == [f"{first.lower()}."]
    assert text.endswith("## B\n\nOther words follow here.\n")


def test_sentences_skip_headings_tables_and_code() -> None:
    md = "# 标题\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode();\n```\n\n正文一句。\n"
    assert [s.text for s in report_sentences(md)] == ["正文一句。"]


# --- placeholder text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "本文作者为xxx20xx-07-16。",
        "汇报人：XXX。",
        "本研究由[姓名]完成。",
        "Lorem ipsum dolor sit amet.",
        "Prepared by Your Name.",
        "本报告中的数据仅用于示例演示。",
        "单击此处添加标题。",
    ],
)
def test_placeholder_text_fails(sentence: str, evidence, by_id, seen) -> None:
    text = good_report(evidence).replace("行业快速扩张的同时", sentence + "行业快速扩张的同时")
    check = _validate(text, by_id, seen).check("placeholder_text")
    assert check is not None and check.failed, sentence
    assert check.details[0].startswith("line 5: ")


def test_anonymised_names_and_ordinary_x_are_not_placeholders(evidence, by_id, seen) -> None:
    text = good_report(evidence).replace(
        "行业快速扩张的同时",
        "在张某诉某平台案中，法院认定王××承担责任，涉及XL码服装与x86服务器。行业快速扩张的同时",
    )
    check = _validate(text, by_id, seen).check("placeholder_text")
    assert check is not None and check.passed is True


# --- table ----------------------------------------------------------------------------------

TABLE_REQUEST = REQUEST.replace("全文字数", "并整理一份各论文Benchmark信息汇总表。全文字数")


def test_a_requested_table_must_be_there(evidence, by_id, seen) -> None:
    prose = _validate(good_report(evidence), by_id, seen, TABLE_REQUEST)
    check = prose.check("table")
    assert check is not None and check.failed
    assert check.details == [
        "the request asks for a table ('各论文Benchmark信息汇总表'); the report has none"
    ]
    with_table = good_report(evidence).replace(
        "## （4）参考资料",
        "| 论文 | Benchmark |\n|---|:---:|\n| A | MMLU |\n\n## （4）参考资料",
    )
    check = _validate(with_table, by_id, seen, TABLE_REQUEST).check("table")
    assert check is not None and check.passed is True and check.measured == "1 tables"


def test_pipes_without_a_rule_are_not_a_table(evidence, by_id, seen) -> None:
    text = good_report(evidence).replace(
        "## （4）参考资料", "| 论文 | Benchmark |\n\n## （4）参考资料"
    )
    check = _validate(text, by_id, seen, TABLE_REQUEST).check("table")
    assert check is not None and check.failed


def test_html_table(evidence, by_id, seen) -> None:
    request = TABLE_REQUEST + "以HTML格式输出。"
    html = (
        "<!DOCTYPE html><html><head><title>T</title></head><body><h1>T</h1>"
        "<table><tr><th>论文</th></tr><tr><td>A</td></tr></table></body></html>"
    )
    check = _validate(html, by_id, seen, request).check("table")
    assert check is not None and check.passed is True


# --- request shape ----------------------------------------------------------------------------


def test_hacked_report_fails_request_shape(by_id, seen) -> None:
    report = _validate("HACKED", by_id, seen)
    check = report.check("request_shape")
    assert check is not None and check.failed
    assert check.details == [
        "the report does not follow the request's shape (1 字, under 5% of the requested "
        "150 字; no headings where 4 sections are asked)"
    ]
    assert not report.passed
    assert report.failures[0].startswith("length") and any(
        f.startswith("request_shape: ignores the request") for f in report.failures
    )


@pytest.mark.data
@pytest.mark.skipif(not QUERIES.exists(), reason="../shared/data is absent")
@pytest.mark.parametrize("task", ["002", "008", "009"])
def test_hacked_report_fails_on_the_real_requests(task: str, by_id, seen) -> None:
    report = _validate("HACKED", by_id, seen, real_queries()[task])
    check = report.check("request_shape")
    assert check is not None and check.failed
    assert "does not follow the request's shape" in check.details[0]


def test_short_report_missing_most_sections_fails_shape(evidence, by_id, seen) -> None:
    long_request = REQUEST.replace("150至400字", "1000至1500字")
    p5 = evidence["pdf5"].id
    text = f"# 直播带货合规分析\n\n## （1）引言\n\n2023年我国直播电商交易规模达4.9万亿元，同比增长35%[{p5}]。\n"
    check = _validate(text, by_id, seen, long_request).check("request_shape")
    assert check is not None and check.failed
    assert "3 of 4 required sections missing" in check.details[0]
    # the same report under a short length request has a shape: other checks judge it
    short = _validate(text, by_id, seen, REQUEST.replace("150至400字", "30至60字"))
    assert short.check("request_shape").passed is True  # type: ignore[union-attr]


def test_no_length_asked_but_nothing_written(by_id, seen) -> None:
    check = _validate("OK", by_id, seen, "写一篇关于直播电商的分析").check("request_shape")
    assert check is not None and check.failed
    assert "only 1 字 of text" in check.details[0]


def test_deepfolder_check_says_failed_and_exits_non_zero(tmp_path) -> None:
    report = tmp_path / "report.md"
    report.write_text("HACKED\n", encoding="utf-8")
    buf = io.StringIO()
    result, code = check_run_dir(report, REQUEST, console=Console(file=buf, width=200))
    assert code == 1 and not result.passed
    out = buf.getvalue()
    assert "request_shape" in out and "the report does not follow the request's shape" in out
    assert "validation FAILED" in out and "request_shape" in out.splitlines()[-2]


def test_editorial_notes_in_parentheses_may_recur() -> None:
    note = "（未在资料中检索到本节的相关证据。）"
    md = f"# R\n\n## 一\n\n{note}\n\n## 二\n\n{note}\n"
    assert repeated_sentences(md) == []


def test_numbered_items_in_parentheses_are_compared() -> None:
    item = "（1）平台接到权利人的通知后应当及时采取删除、屏蔽等必要措施。"
    md = f"# R\n\n## 一\n\n{item}\n\n## 二\n\n{item}\n"
    assert len(repeated_sentences(md)) == 1


def test_placeholder_in_a_table_cell_fails(evidence, by_id, seen) -> None:
    text = good_report(evidence).replace(
        "## （4）参考资料", "| 论文 | 作者 |\n|---|---|\n| A | xxx |\n\n## （4）参考资料"
    )
    check = _validate(text, by_id, seen).check("placeholder_text")
    assert check is not None and check.failed
    assert check.details == ["line 17 (table): placeholder 'xxx' in '| A | xxx |'"]


def test_a_sentence_said_again_inside_a_longer_one_is_a_repeat() -> None:
    """The small model restates a sentence under a label ("引入政策网络：…")."""
    report = (
        "DPO 的核心思想是通过一个简单的 RL 对象，即 Eq.3，来优化语言模型的偏好。\n\n"
        "引入政策网络：DPO 的核心思想是通过一个简单的 RL 对象，即 Eq.3，来优化语言模型的偏好。\n\n"
        # a longer sentence that builds on the first says something new: kept
        "DPO 的核心思想是通过一个简单的 RL 对象来优化偏好，实验覆盖情感生成、摘要和单轮对话三个任务，"
        "并在 GPT-4 评估中以61%对57%的胜率超过 PPO。\n"
    )
    pairs = repeated_sentences(report)
    assert len(pairs) == 1 and pairs[0][1].text.startswith("引入政策网络")
    kept, removed = remove_repeated_sentences(report)
    assert removed and removed[0].startswith("引入政策网络")
    assert "引入政策网络" not in kept and "三个任务" in kept


def test_mixed_chinese_and_english_sentences_are_compared() -> None:
    """Run E's video section said one mixed sentence twice, once inside a longer one."""
    report = (
        "在Reddit TL;DR和Anthropic HH的实验中，DPO的表现优于PPO。\n\n"
        "在Anthropic HH的实验中，DPO的表现优于PPO。\n"
    )
    kept, removed = remove_repeated_sentences(report)
    assert removed == ["在Anthropic HH的实验中，DPO的表现优于PPO。"]
    assert "Reddit" in kept
