from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.records import Evidence
from deepfolder.request_model import parse_request
from deepfolder.validate.checks import match_sections, validate_report
from deepfolder.validate.document import headings, html_document_problems

from .conftest import QUERIES, real_queries
from .reports import REQUEST, good_report


def _validate(text: str, by_id, seen, request: str = REQUEST, **kw):
    return validate_report(text, parse_request(request), resolve=by_id.get, seen_ids=seen, **kw)


def test_good_report_passes(evidence: dict[str, Evidence], by_id, seen) -> None:
    report = _validate(good_report(evidence), by_id, seen)
    assert report.passed, report.failures
    assert report.check("length").measured == "187 字"  # type: ignore[union-attr]
    assert [v.verdict for v in report.verdicts] == ["supported"] * 4
    data = report.to_dict()
    json.dumps(data, ensure_ascii=False)  # serialisable as validation.json
    assert data["support"][0]["evidence_text"].startswith("数据显示")
    assert {c["name"] for c in data["checks"]} >= {"length", "sections", "citations", "support"}


def test_failures_are_reported(evidence: dict[str, Evidence], by_id, seen) -> None:
    text = good_report(evidence)
    text = text.replace("## （2）法律框架", "## 法律框架概述")  # fuzzy title, still found
    text = text.replace(
        "## （3）案例分析\n\n法院认为",
        f"## （3）案例分析\n\n有学者称[{evidence['unseen'].id}]，法院认为",
    )
    text = text.replace("第6页](#", "第4页](#")
    text = text.replace("## （1）引言\n", "")  # a section disappears
    report = _validate(text, by_id, seen)
    assert not report.passed
    sections = report.check("sections")
    assert sections is not None and sections.details == ["missing: （1）引言"]
    citations = report.check("citations")
    assert citations is not None and not citations.passed
    joined = " ".join(citations.details)
    assert "never returned to the model" in joined and "第4页" in joined


def test_section_order(evidence: dict[str, Evidence]) -> None:
    c = parse_request(REQUEST)
    md = "# T\n## 3. 案例分析\n## 1、引言\n## 法律框架\n## 参考资料\n"
    matches = match_sections(c.sections, headings(md))
    assert [(m.required.title, m.heading is not None, m.in_order) for m in matches] == [
        ("引言", True, True),
        ("法律框架", True, True),
        ("案例分析", True, False),
        ("参考资料", True, True),
    ]


def test_unsupported_claim_and_uncited_paragraph(evidence, by_id, seen) -> None:
    text = good_report(evidence).replace(
        "行业快速扩张的同时",
        f"超过六成的消费者曾在直播间遇到虚假宣传[{evidence['sheet'].id}]。行业快速扩张的同时",
    )
    text += (
        "\n## 附录\n\n据统计，2024年全国共查处直播带货违法案件1.2万件，涉案金额达37亿元，"
        "其中《广告法》相关案件占比超过四成，较上年明显上升，反映出监管力度持续加大的态势。\n"
    )
    report = _validate(text, by_id, seen)
    support = report.check("support")
    assert support is not None and support.passed is False
    [bad] = [v for v in report.verdicts if v.verdict == "unsupported"]
    assert bad.evidence_ids == [evidence["sheet"].id] and "六成" in bad.sentence
    assert [u.section for u in report.uncited] == ["附录"]


def test_html_format(evidence, by_id, seen) -> None:
    request = REQUEST + "返回html格式。"
    ev = evidence["pdf5"]
    body = (
        f"<h1>直播带货合规分析</h1><h2>（1）引言</h2><p>2023年我国直播电商交易规模达4.9万亿元，"
        f'同比增长35%<a href="#{ev.id}">直播电商高质量发展.pdf, 第5页</a>。</p>'
    )
    complete = f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"
    assert _validate(complete, by_id, seen, request).check("format").passed  # type: ignore[union-attr]
    assert html_document_problems(complete) == []
    broken = f"<html><body>{body}<div></body></html>"
    problems = html_document_problems(broken)
    assert "missing <!DOCTYPE html> at the start" in problems
    assert "missing <head> element" in problems
    assert any("<div> is never closed" in p for p in problems)
    md = _validate("# 标题\n\n正文", by_id, seen, request)
    assert md.check("format").passed is False  # type: ignore[union-attr]


def test_style_language_and_figures(evidence, by_id, seen, tmp_path: Path) -> None:
    request = REQUEST + "不要分点，需要图表。"
    text = good_report(evidence) + "\n## 图表\n\n- 第一点\n- 第二点\n\n![趋势](figures/trend.png)\n"
    report = _validate(text, by_id, seen, request, run_dir=tmp_path)
    assert report.check("style").passed is False  # type: ignore[union-attr]
    figures = report.check("figures")
    assert figures is not None and figures.passed is False
    assert "does not exist" in figures.details[0]
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "trend.png").write_bytes(b"\x89PNG")
    report = _validate(text, by_id, seen, request, run_dir=tmp_path)
    assert report.check("figures").passed  # type: ignore[union-attr]
    english = _validate(text, by_id, seen, "Write a short report in English.")
    assert english.check("language").passed is False  # type: ignore[union-attr]


def test_bare_report_is_checked_for_form_only(evidence) -> None:
    report = validate_report(
        good_report(evidence), parse_request(REQUEST), resolve=None, seen_ids=None
    )
    assert report.check("citations").passed is None  # type: ignore[union-attr]
    assert report.check("support").passed is None  # type: ignore[union-attr]
    assert report.passed


@pytest.mark.data
@pytest.mark.skipif(not QUERIES.exists(), reason="../shared/data is absent")
def test_real_request_sections_detected_in_a_report() -> None:
    c = parse_request(real_queries()["008"])
    md = (
        "# 新冠疫情监测报告\n\n## 一、核心数据摘要\n\n…\n\n## 二、数据明细\n\n…\n\n"
        "## 三、简要提示\n\n…\n"
    )
    matches = match_sections(c.sections, headings(md))
    assert [m.heading.text if m.heading else None for m in matches] == [
        "新冠疫情监测报告",
        "一、核心数据摘要",
        "二、数据明细",
        "三、简要提示",
    ]


def test_english_report_words_and_claims() -> None:
    from deepfolder.records import Evidence, Locator, Segment, Source

    src = Source(id="DPO.pdf", path="papers/DPO.pdf", kind="pdf")
    text = (
        "Direct Preference Optimization (DPO) fits the policy directly to human preference "
        "data, removing the need to train an explicit reward model."
    )
    ev = Evidence(Segment.create(src.id, text, Locator(page=2)), src)
    constraints = parse_request("Write about 20 words. Include sections: Summary.")
    report = (
        "# DPO\n\n## Summary\n\nDPO optimizes the policy directly from preference data without "
        f"training a reward model [DPO.pdf, p. 2](#{ev.id}). It uses a loss [{ev.id}].\n"
    )
    result = validate_report(report, constraints, resolve={ev.id: ev}.get, seen_ids={ev.id})
    # DPO + Summary + 13 words + 4 words
    assert result.check("length").measured == "19 words"  # type: ignore[union-attr]
    assert result.check("length").passed  # type: ignore[union-attr]
    # the full stop inside the label "p. 2" does not cut the claim
    assert [(v.sentence, v.verdict) for v in result.verdicts] == [
        (
            "DPO optimizes the policy directly from preference data without training a "
            "reward model.",
            "supported",
        ),
        ("It uses a loss.", "unsupported"),
    ]
