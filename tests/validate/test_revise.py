from __future__ import annotations

import pytest

from deepfolder.llm.base import Message, ModelError
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import Evidence
from deepfolder.request_model import RequiredSection, parse_request
from deepfolder.validate.checks import validate_report
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


def _never_called(*_args) -> str:
    raise AssertionError("a code fix must not call the writer")


def _validator(by_id, seen, request: str = REQUEST):
    constraints = parse_request(request)

    def validate(text: str):
        return validate_report(text, constraints, resolve=by_id.get, seen_ids=seen)

    return constraints, validate


def test_repeats_and_template_text_are_deleted_in_code(evidence, by_id, seen) -> None:
    from .reports import good_report

    p5 = evidence["pdf5"].id
    text = good_report(evidence).replace(
        "## （3）案例分析\n\n",
        f"## （3）案例分析\n\n2023年，我国直播电商的交易规模达4.9万亿元，同比增长35%[{p5}]。"
        f"本报告中的数据仅用于示例演示[{p5}]。",
    )
    constraints, validate = _validator(by_id, seen)
    first = validate(text)
    assert {c.name for c in first.checks if c.failed} >= {"repetition", "placeholder_text"}
    assert not [
        i for i in revision_instructions(first, text, constraints) if "示例" in i.message
    ]  # no instruction: nothing for a writer to do
    final, reports = revise_until_valid(
        text,
        constraints,
        rewrite_section=_never_called,
        add_section=_never_called,
        validate=validate,
        max_rounds=2,
        resolve=by_id.get,
        seen_ids=seen,
    )
    assert final == good_report(evidence)
    assert reports[-1].passed, reports[-1].failures
    notes = " ".join(reports[0].notes)
    assert "repetition: deleted in code" in notes and "placeholder_text: deleted in code" in notes


def test_code_fixes_also_run_when_no_round_is_left(evidence, by_id, seen) -> None:
    from .reports import good_report

    text = good_report(evidence).replace("行业快速扩张的同时", "汇报人：xxx。行业快速扩张的同时")
    constraints, validate = _validator(by_id, seen)
    final, reports = revise_until_valid(
        text,
        constraints,
        rewrite_section=_never_called,
        add_section=_never_called,
        validate=validate,
        max_rounds=0,
        resolve=by_id.get,
        seen_ids=seen,
    )
    assert final == good_report(evidence)
    assert [r.passed for r in reports] == [False, True]


def test_sections_without_the_users_files_are_sent_back(evidence, by_id, seen) -> None:
    from .reports import good_report

    vid = evidence["video"].id
    text = good_report(evidence).replace(
        f"主播若存在虚假宣传，可能被认定为广告发布者并承担法律责任[{vid}]。", ""
    )
    request = REQUEST.replace("请撰写", "请基于我提供的PDF和讲座视频，撰写")
    constraints, validate = _validator(by_id, seen, request)
    [instruction] = revision_instructions(validate(text), text, constraints)
    assert (instruction.kind, instruction.section_title) == ("rewrite_section", "（3）案例分析")
    assert instruction.message.startswith("this section cites none of the user's own files (")
    assert "lecture.mp4" in instruction.message and "直播电商高质量发展.pdf" in instruction.message


def test_a_missing_table_is_asked_for(evidence, by_id, seen) -> None:
    from .reports import good_report

    request = REQUEST.replace("全文字数", "并在案例分析中附一张平台责任对比表。全文字数")
    constraints, validate = _validator(by_id, seen, request)
    text = good_report(evidence)
    [instruction] = revision_instructions(validate(text), text, constraints)
    assert instruction.kind == "rewrite_section"
    assert instruction.message.startswith(
        "add the table the request asks for ('平台责任对比表') as a Markdown table"
    )
    # a table that is itself a required section goes with the instruction to add it
    listed = REQUEST.replace("（4）参考资料", "（4）平台责任对比表；（5）参考资料")
    constraints, validate = _validator(by_id, seen, listed)
    instructions = revision_instructions(validate(text), text, constraints)
    [add] = [i for i in instructions if i.kind == "add_section"]
    assert add.message.startswith(
        "section （4）平台责任对比表 missing: add it after （3）案例分析; "
    )
    assert "as a Markdown table" in add.message
    assert not [i for i in instructions if i.kind == "rewrite_section" and "table" in i.message]


def test_a_report_that_ignores_the_request_starts_over(by_id, seen) -> None:
    constraints, validate = _validator(by_id, seen)
    instructions = revision_instructions(validate("HACKED"), "HACKED", constraints)
    [shape] = [i for i in instructions if "shape" in i.message]
    assert shape.kind == "global"
    assert (
        "write the report the request asks for (sections （1）引言, （2）法律框架" in shape.message
    )
    assert "length 150–400 字" in shape.message
    assert len([i for i in instructions if i.kind == "add_section"]) == 4


def test_a_short_unsupported_claim_cited_before_its_full_stop_is_found(
    evidence, by_id, seen
) -> None:
    from .reports import good_report

    text = good_report(evidence).replace(
        "## （3）案例分析\n\n",
        f"## （3）案例分析\n\n超过六成消费者遇到虚假宣传[{evidence['sheet'].id}]。",
    )
    constraints, validate = _validator(by_id, seen)
    [instruction] = [
        i for i in revision_instructions(validate(text), text, constraints) if "六成" in i.message
    ]
    assert (instruction.kind, instruction.section_title) == ("rewrite_section", "（3）案例分析")


def test_template_text_in_a_table_goes_to_the_writer(evidence, by_id, seen) -> None:
    from .reports import good_report

    text = good_report(evidence).replace(
        "## （4）参考资料", "| 论文 | 作者 |\n|---|---|\n| A | xxx |\n\n## （4）参考资料"
    )
    constraints, validate = _validator(by_id, seen)
    [instruction] = revision_instructions(validate(text), text, constraints)
    assert (instruction.section_title, instruction.check) == ("（3）案例分析", "placeholder_text")
    assert instruction.message.startswith("template text, not a fact: placeholder 'xxx' in")


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


def test_unsupported_and_uncited_claims_are_named_and_can_be_cut(evidence, by_id, seen) -> None:
    """The pipeline's revisor cuts them in code (a small model's rewrite of the whole
    section lost what it said right); the instructions carry the claim to cut."""
    from deepfolder.validate.document import split_sections
    from deepfolder.validate.revise import remove_claims

    pdf5 = evidence["pdf5"].id
    text = f"""# 直播带货合规分析

## （1）引言

2023年我国直播电商交易规模达4.9万亿元，同比增长35%[{pdf5}]。火星上已经建成了三座城市，常住人口达到120万人[{pdf5}]。

在2019年，全国共有87家直播基地，其中61家位于东部沿海地区，带动就业岗位超过一百万个，平均每个基地入驻主播约230名，年度培训场次达到了1.5万场，同比增长了12.5%。

## （2）法律框架

平台接到通知后应及时删除侵权内容[{evidence["pdf6"].id}]。
"""
    constraints = parse_request(REQUEST)
    report = validate_report(text, constraints, resolve=by_id.get, seen_ids=seen)
    claims = [i for i in revision_instructions(report, text, constraints) if i.quote]
    assert {i.check for i in claims} == {"support", "uncited"}
    intro = next(s for s in split_sections(text) if s.title == "（1）引言")
    cut = remove_claims(intro.body, [i for i in claims if i.section_title == "（1）引言"])
    assert cut is not None
    assert "4.9万亿元" in cut and pdf5 in cut
    assert "火星" not in cut and "87家直播基地" not in cut
    # an instruction of another kind, or a claim not in the section: not cut in code
    other = RevisionInstruction("rewrite_section", "write prose", 1, "（1）引言", check="style")
    assert remove_claims(intro.body, [other]) is None
    missing = RevisionInstruction(
        "rewrite_section", "x", 1, "（1）引言", check="support", quote="不在这里的句子。"
    )
    assert remove_claims(intro.body, [missing]) is None


def test_a_short_report_never_pads_its_title_section(evidence, by_id, seen) -> None:
    """Case 008: "（1）报告标题" holds the report's title; asked to lengthen the report,
    the revisor was told to expand it too."""
    request = "写一份报告，包含以下部分：（1）报告标题；（2）核心数据摘要；（3）简要提示。字数在800-1000字。"
    constraints = parse_request(request)
    cite = evidence["pdf5"].id
    text = (
        "# 新冠疫情监测报告\n\n## （1）报告标题\n\n**新冠疫情监测报告**\n\n"
        f"## （2）核心数据摘要\n\n累计确诊病例持续增长[{cite}]。\n\n"
        f"## （3）简要提示\n\n应持续关注重点人群[{cite}]。\n"
    )
    report = validate_report(text, constraints, resolve=by_id.get, seen_ids=seen)
    instructions = revision_instructions(report, text, constraints)
    expand = {i.section_title for i in instructions if "expand this section" in i.message}
    assert expand == {"（2）核心数据摘要", "（3）简要提示"}


def test_evidence_found_during_revision_is_seen_at_the_end(evidence, by_id, seen) -> None:
    """Case 009: a rewrite cited passages its writer had just searched up; the strip at
    the end used the evidence seen before the rounds and marked them "[来源待核实]"."""
    constraints = parse_request(REQUEST)
    found_later = evidence["unseen"]
    live = set(seen)

    def rewrite(section: Section, instructions: list[RevisionInstruction]) -> str:
        live.add(found_later.id)  # the writer's search shows it
        return f"{section.body.rstrip()}\n\n平台应履行审核义务[{found_later.id}]。\n"

    def no_section(required: RequiredSection, instructions: list[RevisionInstruction]) -> str:
        return ""

    def run(seen_ids):  # type: ignore[no-untyped-def]
        final, _ = revise_until_valid(
            _short_report(evidence),
            constraints,
            rewrite_section=rewrite,
            add_section=no_section,
            validate=lambda t: validate_report(t, constraints, resolve=by_id.get, seen_ids=live),
            max_rounds=1,
            resolve=by_id.get,
            seen_ids=seen_ids,
        )
        return final

    assert f"[{found_later.id}]" in run(lambda: set(live))
    live.discard(found_later.id)
    assert "来源待核实" in run(set(seen))  # taken before the rounds: marked
