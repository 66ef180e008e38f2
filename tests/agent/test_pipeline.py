from __future__ import annotations

import json
import re
from pathlib import Path

from deepfolder.agent.pipeline import (
    attach_citations,
    clean_section_text,
    plan_budgets,
    run_pipeline,
)
from deepfolder.agent.state import Conversation, SectionPlan
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import FinalAnswerStep, ModelCallStep, ToolCallStep
from deepfolder.request_model import parse_request
from spine_fixtures import run_state, small_context

REQUEST = "请写一篇《图书馆报告》，包含以下章节：（1）背景；（2）主要发现；（3）参考资料。全文字数在200至300字之间。"


def small_model_fn(messages, tools):  # type: ignore[no-untyped-def]
    """Behaves like the measured 1.5B model: follows content, invents ids and numbers."""
    prompt = messages[-1]["content"]
    if "JSON" in prompt:
        return json.dumps({"queries": ["电子书借阅量", "图书馆"]}, ensure_ascii=False)
    excerpts = re.findall(r"\[\d+\] （[^）]*）(.+)", prompt)
    body = "".join(excerpts)
    return f"## 背景\n{body}[E99999999][3] 这是模型自己的总结句子没有依据可言啊。"


def test_pipeline_writes_every_section_with_code_attached_citations(tmp_path: Path) -> None:
    ctx = small_context(tmp_path)
    conv = Conversation(
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": REQUEST}]
    )
    state = run_state(ctx, REQUEST, FunctionModel(small_model_fn, is_local=True), conv=conv)
    steps = list(run_pipeline(state))
    final = steps[-1]
    assert isinstance(final, FinalAnswerStep)
    text = final.text
    assert text.startswith("# 图书馆报告")
    assert "## （1）背景" in text and "## （2）主要发现" in text and "## （3）参考资料" in text
    ids = re.findall(r"E[0-9a-f]{8}", text)
    assert ids, "code must attach citations from the section's evidence"
    assert "E99999999" not in text and "[3]" not in text  # typed ids/numbers are stripped
    assert all(i in ctx.seen for i in ids)  # only evidence the run retrieved
    # the unsupported sentence the model added gets no citation
    assert re.search(r"没有依据可言啊。(?!\[E)", text)
    assert any(isinstance(s, ToolCallStep) and s.name == "search" for s in steps)
    purposes = [s.purpose for s in steps if isinstance(s, ModelCallStep)]
    assert any(p.startswith("write （1）背景") for p in purposes)


def test_budgets_follow_the_requested_range() -> None:
    c = parse_request(REQUEST)
    plans = plan_budgets([(s.label, s.title) for s in c.sections], c, "zh")
    assert [p.kind for p in plans] == ["body", "body", "references"]
    assert sum(p.budget for p in plans) == 250
    reading = parse_request(
        "写一篇2000至3000字的论文阅读报告，包含（1）论文基本信息；（2）核心内容摘要；（3）关键技术解析"
    )
    plans = plan_budgets([(s.label, s.title) for s in reading.sections], reading, "zh")
    # the basic information takes half a share: 2500 字 over 0.5 + 1 + 1
    assert [p.budget for p in plans] == [500, 1000, 1000]


def test_attach_citations_picks_best_overlap_and_skips_unrelated() -> None:
    from deepfolder.records import Evidence, Locator, Segment, Source

    src = Source(id="a.pdf", path="a.pdf", kind="pdf")
    e1 = Evidence(Segment.create("a.pdf", "2024年电子书借阅量为8.6万册次", Locator(page=2)), src)
    e2 = Evidence(Segment.create("a.pdf", "老年读者的数字鸿沟明显", Locator(page=3)), src)
    out = attach_citations(
        "电子书借阅量达到8.6万册次。老年读者存在数字鸿沟。天气很好今天出门散步。", [e1, e2]
    )
    assert (
        out
        == f"电子书借阅量达到8.6万册次[{e1.id}]。老年读者存在数字鸿沟[{e2.id}]。天气很好今天出门散步。"
    )


def test_clean_strips_headings_and_reference_lists() -> None:
    plan = SectionPlan("（1）", "背景", 100)
    raw = "## 背景\n正文一[1]。\n【材料2】正文二。\n参考文献\n[1] xx"
    assert clean_section_text(raw, plan) == "正文一。\n正文二。"


def test_short_section_gets_one_more_part_from_unused_excerpts(tmp_path: Path) -> None:
    ctx = small_context(tmp_path)
    request = "请写一篇《图书馆报告》，包含以下章节：（1）主要发现。全文字数在300至400字之间。"
    prompts: list[str] = []

    def fn(messages, tools):  # type: ignore[no-untyped-def]
        prompt = messages[-1]["content"]
        if "JSON" in prompt:
            return json.dumps({"queries": ["电子书借阅量"]}, ensure_ascii=False)
        prompts.append(prompt)
        if len(prompts) == 1:
            return "2024年全区电子书借阅量为8.6万册次。"
        return "建议在每家图书馆设置每周一次的数字助老辅导时段。"

    state = run_state(ctx, request, FunctionModel(fn, is_local=True))
    text = next(s for s in run_pipeline(state) if isinstance(s, FinalAnswerStep)).text
    # one part (350 字 is about one call's worth), short: one more call, then it stops
    assert len(prompts) == 2
    assert "8.6万册次" in text and "数字助老" in text
    # the extra part is shown the excerpts the first did not cite, and not the text
    # written so far (the small model copies what it is shown)
    assert "8.6万册次" in prompts[0] and "8.6万册次" not in prompts[1]
    assert "前文已经概括介绍过" in prompts[1] and "本节已经写好的部分" not in prompts[1]


def test_statistics_tie_a_sentence_to_the_computation_that_printed_them() -> None:
    from deepfolder.records import Evidence, Locator, Segment, Source

    table = Source(id="run:analysis/1", path="analysis/analysis_1.md", kind="analysis")
    article = Source(id="a.json#0", path="a.json", kind="article", title="疫情", article=0)
    computed = Evidence(
        Segment.create(
            table.id, "时间范围: 2020-01-22 – 2023-03-09; 最新累计值: 676,570,149", Locator()
        ),
        table,
    )
    prose = Evidence(
        Segment.create(
            article.id, "全球累计感染人数持续上升，各国加强监测。", Locator(article=0, chunk=1)
        ),
        article,
    )
    out = attach_citations("截至2023年3月，全球累计感染人数为676,570,149人。", [prose, computed])
    assert out.endswith(f"[{computed.id}]。")


def test_clean_drops_repeated_lines() -> None:
    plan = SectionPlan("（2）", "摘要", 100)
    raw = "累计死亡人数为6,881,802人。\n新增为86862人。\n\n累计死亡人数为6,881,802人。\n新增为86862人。"
    assert clean_section_text(raw, plan) == "累计死亡人数为6,881,802人。\n新增为86862人。"


def test_whole_report_is_trimmed_in_code_to_the_maximum(tmp_path: Path) -> None:
    from deepfolder.agent.pipeline import fit_total_length
    from deepfolder.agent.state import SectionDraft
    from deepfolder.validate.length import count_length

    request = "写一篇报告，包含以下章节：（1）背景；（2）发现。全文字数在50至80字之间。"
    state = run_state(
        small_context(tmp_path), request, FunctionModel(lambda m, t: "", is_local=True), tools=()
    )
    sentence = "青禾区共有社区图书馆十四家并开通了电子书借阅服务。"
    state.drafts = [
        SectionDraft(SectionPlan("（1）", "背景", 30), sentence * 3),
        SectionDraft(SectionPlan("（2）", "发现", 30), sentence * 2),
    ]
    fit_total_length(state)
    total = sum(count_length(d.text, "字") for d in state.drafts)
    assert total <= 80 and all(d.text for d in state.drafts)


def test_clean_strips_a_title_glued_to_the_first_sentence() -> None:
    plan = SectionPlan("（2）", "法律框架", 100)
    assert (
        clean_section_text("法律框架避风港原则源于美国版权法。", plan)
        == "避风港原则源于美国版权法。"
    )
    assert clean_section_text("法律框架：它规定了通知删除。", plan) == "它规定了通知删除。"


def test_clean_drops_the_prompt_the_model_echoed() -> None:
    plan = SectionPlan("（1）", "论文基本信息", 300)
    raw = (
        "本文提出了DPO算法。\n（用户文件 DPO.pdf, 第1页）\n本节正文：\n"
        "DPO不需要奖励模型。\n本节已经写好的部分如下，请接着写一段新的内容，不要重复：\n本文提出了DPO算法。"
    )
    assert clean_section_text(raw, plan) == "本文提出了DPO算法。\nDPO不需要奖励模型。"


def test_clean_drops_note_fragments_and_echoed_labels() -> None:
    plan = SectionPlan("（1）", "论文基本信息", 300)
    raw = (
        "Rafailov, Rafael - 作者1，斯坦福大学\n2024年7月29日\nNeurIPS 2023\n中文\n"
        '<video src="talk.mp4" controls></video>\n DPO.pdf, 第1页\n'
        "DPO 用一个简单的分类损失直接优化偏好。\n实验表明其效果与PPO相当"
    )
    assert clean_section_text(raw, plan) == (
        "DPO 用一个简单的分类损失直接优化偏好。\n实验表明其效果与PPO相当"
    )


def test_clean_collapses_a_phrase_the_model_repeats_in_a_loop() -> None:
    plan = SectionPlan("（3）", "关键技术解析", 300)
    raw = "在视频中，DPO 的损失函数、PPO 算法、PPO 算法、PPO 算法、PPO 算法、PPO 算法。"
    assert clean_section_text(raw, plan) == "在视频中，DPO 的损失函数、PPO 算法。"
    raw = "其实现细节包括偏好模型的定义、偏好函数的定义、偏好函数的定义、偏好函数的定义。"
    assert clean_section_text(raw, plan) == "其实现细节包括偏好模型的定义、偏好函数的定义。"
    kept = "第一步很好，第二步很好。"  # a short word said twice is no loop
    assert clean_section_text(kept, plan) == kept


def test_a_continuation_does_not_copy_the_lines_already_written() -> None:
    from deepfolder.agent.section_text import new_lines

    text = "DPO 不需要奖励模型[E12345678]。\n它用二元交叉熵损失训练。"
    addition = "DPO 不需要奖励模型。\n实验覆盖三个任务。"
    assert new_lines(addition, text) == "实验覆盖三个任务。"


def test_a_section_does_not_end_on_an_announcement() -> None:
    from deepfolder.agent.section_text import without_dangling_announcement

    text = "DPO 用二元交叉熵损失训练策略。\n\nDPO 的优化目标具体来说通过以下两个步骤实现：\n"
    assert without_dangling_announcement(text) == "DPO 用二元交叉熵损失训练策略。"
    kept = "具体步骤如下：\n第一步，构造偏好数据。"
    assert without_dangling_announcement(kept) == kept


def test_an_echoed_origin_label_becomes_the_title() -> None:
    plan = SectionPlan("（2）", "核心内容摘要", 300)
    raw = (
        "DPO.pdf（Direct Preference Optimization: Your Language Model is Secretly a Reward "
        "Model）是一篇关于直接偏好优化的论文。"
    )
    assert clean_section_text(raw, plan) == (
        "《Direct Preference Optimization: Your Language Model is Secretly a Reward Model》"
        "是一篇关于直接偏好优化的论文。"
    )
    english = "talk.mp4 (Why DPO works) shows the loss and the two models it needs in practice."
    assert clean_section_text(english, plan) == (
        "“Why DPO works” shows the loss and the two models it needs in practice."
    )


def test_a_computed_result_is_shown_whole_and_line_by_line() -> None:
    """Case 009: cut at 360 characters, the analysis the sections were to be written
    from was a header of descriptive statistics without the correlations."""
    from deepfolder.agent.pipeline import _excerpt
    from deepfolder.records import Evidence, Locator, Segment, Source

    table = "\n".join(f"因素{i}    与压力的相关系数    0.{i:02d}" for i in range(40))
    src = Source(id="analysis_1.md", path="analysis/analysis_1.md", kind="analysis")
    shown = _excerpt(Evidence(Segment.create(src.id, table, Locator(chunk=1)), src))
    assert "因素25 与压力的相关系数 0.25" in shown.splitlines()
    page = Source(id="a.pdf", path="a.pdf", kind="pdf")
    plain = _excerpt(Evidence(Segment.create(page.id, table, Locator(page=1)), page))
    assert "\n" not in plain and len(plain) <= 361
