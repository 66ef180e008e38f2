from __future__ import annotations

import pytest

from deepfolder.llm.base import Message, ModelError
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import Evidence
from deepfolder.validate.checks import validate_report
from deepfolder.validate.constraints import RequiredSection, parse_request
from deepfolder.validate.revise import (
    RevisionInstruction,
    Section,
    join_sections,
    repair_citation_labels,
    revise_until_valid,
    revision_instructions,
    split_sections,
    strip_unresolvable_citations,
)

from .reports import REQUEST


def _short_report(ev: dict[str, Evidence]) -> str:
    """Too short (< 150 字) and missing （3）案例分析."""
    return f"""# 直播带货合规分析

## （1）引言

2023年直播电商交易规模达4.9万亿元[{ev["pdf5"].id}]。

## （2）法律框架

平台接到通知后应及时删除[{ev["pdf6"].id}]。

## （4）参考资料

1. [{ev["pdf5"].id}] {ev["pdf5"].citation_label("zh")} — "数据显示"
"""


def _writer(ev: dict[str, Evidence]) -> FunctionModel:
    """A fake writer model: expands a section from its evidence, writes missing sections."""

    def reply(messages: list[Message], tools) -> str:
        prompt = messages[-1]["content"]
        if prompt.startswith("ADD"):
            art, vid = ev["article"], ev["video"]
            return (
                "## （3）案例分析\n\n法院认为，平台从主播带货中直接获取经济利益的，"
                f"应当对主播及其推广的商品负有更高的审核注意义务[{art.id}]。讲者指出，主播在直播带货中若存在虚假宣传，"
                f"可能被认定为广告发布者，承担相应的法律责任[{vid.id}]。"
            )
        section = prompt.split("\n---\n", 1)[1]
        if "（1）引言" in section:
            extra = (
                f"数据显示，2023年我国直播电商交易规模达4.9万亿元，同比增长35%，占网络零售总额的比重"
                f"进一步提升[{ev['pdf5'].id}]。"
            )
        else:
            extra = (
                "根据避风港原则，网络服务提供者接到权利人的通知后，应当及时采取删除、屏蔽、断开链接等"
                f"必要措施，否则对损害的扩大部分承担连带责任[{ev['pdf6'].id}]。"
            )
        return section.rstrip() + "\n\n" + extra

    return FunctionModel(reply)


def test_short_report_missing_a_section_becomes_compliant(evidence, by_id, seen) -> None:
    constraints = parse_request(REQUEST)
    model = _writer(evidence)
    rewritten: list[str] = []

    def rewrite_section(section: Section, instructions: list[RevisionInstruction]) -> str:
        rewritten.append(section.title)
        messages = [i.message for i in instructions]
        prompt = "REWRITE " + "\n".join(messages) + "\n---\n" + section.text
        return model.chat([{"role": "user", "content": prompt}]).content or ""

    def add_section(required: RequiredSection, instructions: list[RevisionInstruction]) -> str:
        prompt = "ADD " + required.display + "\n" + "\n".join(i.message for i in instructions)
        return model.chat([{"role": "user", "content": prompt}]).content or ""

    def validate(text: str):
        return validate_report(text, constraints, resolve=by_id.get, seen_ids=seen)

    original = _short_report(evidence)
    final, reports = revise_until_valid(
        original,
        constraints,
        rewrite_section=rewrite_section,
        add_section=add_section,
        validate=validate,
        max_rounds=2,
        resolve=by_id.get,
        seen_ids=seen,
    )
    assert not reports[0].passed
    assert any("missing: （3）案例分析" in f for f in reports[0].failures)
    assert reports[-1].passed, reports[-1].failures
    headings = [s.title for s in split_sections(final) if s.level]
    assert headings == [
        "直播带货合规分析",
        "（1）引言",
        "（2）法律框架",
        "（3）案例分析",
        "（4）参考资料",
    ]
    # section by section: the title and the reference list were never sent for rewriting
    assert set(rewritten) <= {"（1）引言", "（2）法律框架"}
    assert final.startswith("# 直播带货合规分析\n")
    assert len(model.calls) <= 6


def test_loop_always_finishes_and_reports_what_still_fails(evidence, by_id, seen) -> None:
    constraints = parse_request(REQUEST)
    calls = {"rewrite": 0}

    def stubborn(section: Section, instructions: list[RevisionInstruction]) -> str:
        calls["rewrite"] += 1
        if section.title == "（1）引言":
            raise RuntimeError("model timed out")
        return section.text  # no change

    def no_section(required: RequiredSection, instructions: list[RevisionInstruction]) -> str:
        return ""

    final, reports = revise_until_valid(
        _short_report(evidence),
        constraints,
        rewrite_section=stubborn,
        add_section=no_section,
        validate=lambda t: validate_report(t, constraints, resolve=by_id.get, seen_ids=seen),
        max_rounds=3,
    )
    assert final == _short_report(evidence)
    assert len(reports) == 1  # nothing changed: no second validation of the same text
    notes = " ".join(reports[-1].notes)
    assert "rewrite of '（1）引言' failed: model timed out" in notes
    assert "revision changed nothing" in notes
    assert "still failing" in notes and "length" in notes


def test_instructions_are_precise(evidence, by_id, seen) -> None:
    constraints = parse_request(REQUEST)
    text = _short_report(evidence)
    report = validate_report(text, constraints, resolve=by_id.get, seen_ids=seen)
    instructions = revision_instructions(report, text, constraints)
    messages = [str(i) for i in instructions]
    assert "section （3）案例分析 missing: add it after （2）法律框架" in messages
    expand = [i for i in instructions if "expand this section" in i.message]
    assert {i.section_title for i in expand} == {"（1）引言", "（2）法律框架"}
    assert all(i.message.startswith("length ") and "need 150–400 字" in i.message for i in expand)
    # the change is also carried as a number, the same the message states
    for i in expand:
        assert i.length_change is not None and i.length_change > 0
        assert f"by ~{i.length_change} 字" in i.message
    assert all(i.length_change is None for i in instructions if i not in expand)


def test_strip_unresolvable_citations(evidence, by_id, seen) -> None:
    good, unseen = evidence["pdf5"].id, evidence["unseen"].id
    text = (
        f"甲[{good}, {unseen}]。乙[{unseen}]。丙[Eabcdef12]。丁[lecture.mp4, Frame 4-7]。"
        f"戊[直播电商高质量发展.pdf, 第9页](#{unseen})。\n\n## 参考来源\n\n"
        f'1. [{good}] x — "a"\n2. [{unseen}] y — "b"\n'
    )
    out, done = strip_unresolvable_citations(text, by_id.get, seen, language="zh")
    assert out == (
        f"甲[{good}]。乙[来源待核实]。丙[来源待核实]。丁[来源待核实]。戊[来源待核实]。\n\n"
        f'## 参考来源\n\n1. [{good}] x — "a"\n'
    )
    assert len(done) == 6
    removed, _ = strip_unresolvable_citations(text, by_id.get, seen, mode="remove")
    assert "来源待核实" not in removed and unseen not in removed


def test_repair_citation_labels(evidence, by_id) -> None:
    ev = evidence["pdf6"]
    fixed, n = repair_citation_labels(f"见[直播电商高质量发展.pdf, 第4页](#{ev.id})。", by_id.get)
    assert n == 1 and fixed == f"见[直播电商高质量发展.pdf, 第6页](#{ev.id})。"


def test_split_and_join_round_trip() -> None:
    text = "前言\n# 标题\n\n正文\n## 一\n内容\n```\n# 不是标题\n```\n## 二\n结尾"
    sections = split_sections(text)
    assert [s.title for s in sections] == ["", "标题", "一", "二"]
    assert join_sections(sections) == text


def test_a_model_that_stays_down_ends_the_revision(evidence, by_id, seen) -> None:
    """A ModelError (retries exhausted) is not a writer's mistake to note and skip: it
    ends the run, which can then be resumed (runner/resume.py)."""
    constraints = parse_request(REQUEST)

    def down(section: Section, instructions: list[RevisionInstruction]) -> str:
        raise ModelError("vllm:test at http://127.0.0.1:1/v1: HTTP 503 after 5 retries")

    with pytest.raises(ModelError, match="HTTP 503"):
        revise_until_valid(
            _short_report(evidence),
            constraints,
            rewrite_section=down,
            add_section=lambda required, instructions: "",
            validate=lambda t: validate_report(t, constraints, resolve=by_id.get, seen_ids=seen),
            max_rounds=2,
        )
