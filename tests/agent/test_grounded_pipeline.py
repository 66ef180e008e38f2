"""The embedded path writes about the user's files, not about whatever web pages match
the section titles (issue: a reading report of "the paper and video I provided")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import spine_fixtures
from deepfolder.agent.brief import build_brief
from deepfolder.agent.pipeline import run_pipeline, wants_analysis
from deepfolder.index import open_index
from deepfolder.llm.fake import FunctionModel
from deepfolder.records import (
    Evidence,
    FinalAnswerStep,
    Locator,
    ModelCallStep,
    NoteStep,
    Segment,
    Source,
    ToolCallStep,
)
from deepfolder.tools.base import ToolContext
from spine_fixtures import run_state

REQUEST = (
    "请基于我提供的论文及相关视频，写一篇600至900字的论文阅读报告，包含（1）论文基本信息；"
    "（2）核心内容摘要；（3）关键技术解析；（4）视频补充内容，标注来源。"
)
PAPER_PAGES = {
    1: "Direct Preference Optimization:\nYour Language Model is Secretly a Reward Model\n"
    "Rafael Rafailov∗ Archit Sharma∗ Eric Mitchell∗\nStanford University\nAbstract\n"
    "We introduce Direct Preference Optimization (DPO), which fits preferences with a simple "
    "classification loss instead of reinforcement learning from human feedback (RLHF).",
    4: "4 Direct Preference Optimization\nThe DPO objective is a binary cross-entropy loss over "
    "preference pairs; the policy itself defines an implicit reward, no reward model is trained.",
    2: "Our main contribution is Direct Preference Optimization (DPO), a simple RL-free "
    "algorithm for training language models from preferences.",
    3: "Preliminaries: the RLHF pipeline fits a reward model to human comparisons and then "
    "optimises the policy with PPO under a KL penalty to the reference model.",
    6: "The gradient of the DPO loss weights each example by how much the implicit reward "
    "model mis-orders the pair, scaled by the temperature beta.",
    5: "Theoretical analysis: under the Bradley-Terry model the DPO update increases the "
    "likelihood of preferred completions and decreases that of dispreferred ones.",
    7: "6 Experiments\nOn the TL;DR summarization task DPO reaches a GPT-4 win rate of about "
    "61 percent, above PPO at 57 percent.",
    8: "On IMDb sentiment generation DPO achieves the best reward at every KL divergence, "
    "better than PPO even when PPO can access ground-truth rewards.",
}
# Web pages that match the section titles word for word: what the old pipeline cited.
WEB = [
    (
        "论文阅读报告怎么写",
        "论文阅读报告的论文基本信息应包括题目和作者，核心内容摘要要简明，关键技术解析要深入。",
    ),
    (
        "关键技术解析：电源课程作业",
        "本课程作业的关键技术解析包括整流、滤波与稳压电路，作者为xxx20xx-07-16。",
    ),
    ("视频补充内容制作指南", "视频补充内容可以提高课程的吸引力，视频剪辑要注意节奏。"),
]


def _context(tmp_path: Path, *, with_video: bool, more_pages: int = 0) -> ToolContext:
    settings = spine_fixtures.test_settings(tmp_path)
    index = open_index(tmp_path / "index", settings)
    paper = Source(id="DPO.pdf", path="DPO.pdf", kind="pdf", title="DPO", meta={"pages": 27})
    pages = dict(PAPER_PAGES)
    for p in range(9, 9 + more_pages):  # appendix pages: DPO derivations, one per page
        pages[p] = f"Appendix {p}: DPO derivation step {p} of the preference objective, lemma {p}."
    segs = [
        Segment.create(paper.id, text, Locator(page=p, chunk=1), seq=p) for p, text in pages.items()
    ]
    sources = [paper]
    if with_video:
        video = Source(id="talk.mp4", path="talk.mp4", kind="video")
        sources.append(video)
        segs.append(
            Segment.create(
                video.id,
                "screen: Why DPO / no reward model\nspeech: DPO removes the reward model and "
                "the reinforcement learning loop of RLHF.",
                Locator(start=0.0, end=21.5),
            )
        )
    articles, article_segs = spine_fixtures.collection(WEB)
    index.add([*sources, *articles], [*segs, *article_segs])
    settings.agent.section_evidence = 3  # a small folder: each section its own passages
    return ToolContext(index=index, settings=settings, folder=tmp_path, language="zh")


def _writer(messages, tools):  # type: ignore[no-untyped-def]
    """A small model: proposes the section title as query, copies what it is shown."""
    prompt = messages[-1]["content"]
    if "JSON" in prompt:
        section = re.search(r"当前章节：(.+)", prompt)
        return json.dumps(
            {"queries": [section.group(1) if section else "报告"]}, ensure_ascii=False
        )
    excerpts = re.findall(r"\[\d+\] （[^）]*）(.+)", prompt)
    return "".join(e.strip() + "。" for e in excerpts[:3])


def _run(tmp_path: Path, *, with_video: bool = True) -> tuple[str, list]:  # type: ignore[type-arg]
    ctx = _context(tmp_path, with_video=with_video)
    state = run_state(ctx, REQUEST, FunctionModel(_writer, is_local=True))
    state.brief = build_brief(ctx.index)
    steps = list(run_pipeline(state))
    final = steps[-1]
    assert isinstance(final, FinalAnswerStep)
    return final.text, steps


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_section_cites_the_users_files(tmp_path: Path) -> None:
    text, steps = _run(tmp_path)
    sections = _sections(text)
    assert len(sections) == 4
    user_ids = {
        Segment.create("DPO.pdf", t, Locator(page=p, chunk=1), seq=p).id
        for p, t in PAPER_PAGES.items()
    }
    for title, body in sections.items():
        cited = set(re.findall(r"E[0-9a-f]{8}", body))
        assert cited, title
        if "视频" in title:
            assert "DPO removes the reward model" in body or "Why DPO" in body
        else:
            assert cited & user_ids, f"{title} cites no page of the paper: {body}"
    # the template line of a web page never becomes a fact of the report
    assert "xxx" not in text
    # searches were scoped to the user's files first
    scoped = [s for s in steps if isinstance(s, ToolCallStep) and s.arguments.get("sources")]
    assert scoped and all(set(s.arguments["sources"]) <= {"DPO.pdf", "talk.mp4"} for s in scoped)


def test_basic_information_states_the_real_title_and_authors(tmp_path: Path) -> None:
    text, steps = _run(tmp_path)
    basic = next(b for t, b in _sections(text).items() if "基本信息" in t)
    assert "Direct Preference Optimization" in basic
    assert "Rafailov" in basic
    # the writer is asked for the work itself, not for "论文基本信息" (which the small
    # model answers with a list of title and authors, whatever else it is told)
    prompt = next(
        s.messages[-1]["content"]
        for s in steps
        if isinstance(s, ModelCallStep) and s.purpose.startswith("write （1）")
    )
    assert "你现在只写其中一节：论文研究的问题、提出的方法与主要贡献" in prompt
    assert "论文基本信息" not in prompt.split("你现在只写其中一节")[1]


def test_a_missing_video_is_said_not_filled_from_web_pages(tmp_path: Path) -> None:
    text, steps = _run(tmp_path, with_video=False)
    assert "> 说明：请求提到的视频不在所给文件夹中" in text
    video = next(b for t, b in _sections(text).items() if "视频" in t)
    assert "文件夹中没有可读取的视频" in video
    assert "视频剪辑" not in video  # not written from the web page about videos
    assert any(isinstance(s, NoteStep) and "视频" in s.message for s in steps)


def test_a_sentence_repeated_across_sections_is_written_once(tmp_path: Path) -> None:
    def repeating(messages, tools):  # type: ignore[no-untyped-def]
        if "JSON" in messages[-1]["content"]:
            return json.dumps({"queries": ["DPO"]})
        return "DPO 用一个简单的分类损失直接在偏好数据上训练语言模型，不需要单独的奖励模型。"

    ctx = _context(tmp_path, with_video=True)
    state = run_state(ctx, REQUEST, FunctionModel(repeating, is_local=True))
    state.brief = build_brief(ctx.index)
    steps = list(run_pipeline(state))
    text = steps[-1].text
    assert text.count("不需要单独的奖励模型") == 1
    assert any(isinstance(s, NoteStep) and "repeated sentence" in s.message for s in steps)


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("基于提供的某股票日线数据集，撰写一篇3000至5000字的市场趋势分析报告。", True),
        ("请根据提供的Excel数据，分析学生压力的影响因素。", True),
        ("写一篇关于新能源汽车市场的分析报告。", False),  # no data of the user's
        ("请基于我提供的论文写一篇阅读报告。", False),  # the user's paper is not data
    ],
)
def test_a_request_built_on_the_users_data_gets_the_analysis(
    tmp_path: Path, request_text: str, expected: bool
) -> None:
    ctx = _context(tmp_path, with_video=False)
    state = run_state(ctx, request_text, FunctionModel(_writer, is_local=True))
    assert wants_analysis(state) is expected


def test_a_long_section_is_written_in_parts_each_from_its_own_pages(tmp_path: Path) -> None:
    """The small model copies a section it is asked to continue; a long section is
    instead written in parts, each from its own stretch of the paper, none shown the
    others' text."""
    ctx = _context(tmp_path, with_video=True, more_pages=24)
    request = REQUEST.replace("600至900字", "2000至3000字")
    prompts: dict[str, str] = {}
    state = run_state(ctx, request, FunctionModel(_writer, is_local=True))
    state.brief = build_brief(ctx.index)
    steps = list(run_pipeline(state))
    calls = [s for s in steps if isinstance(s, ModelCallStep)]
    for step in calls:
        prompts[step.purpose] = step.messages[-1]["content"]
    parts = [p for p in prompts if p.startswith("write （2）") and "(part " in p]
    assert len(parts) >= 2, list(prompts)
    pages = [
        [int(n) for n in re.findall(r"DPO\.pdf, 第(\d+)页", prompts[p])] for p in sorted(parts)
    ]
    assert all(pages)
    # each part its own pages, in reading order; later parts are told not to start over
    assert max(pages[0]) <= min(pages[1])
    assert not set(pages[0]) & set(pages[1])
    assert "前文已经概括介绍过" in prompts[sorted(parts)[1]]
    assert all("本节已经写好的部分" not in prompts[p] for p in parts)


def test_every_section_of_a_report_on_the_users_data_draws_on_the_computation(
    tmp_path: Path,
) -> None:
    """Case 009: (4) 高风险群体 and (5) 干预对策 were written from one web page each,
    although the run had computed results of the user's sheet: each section now gets
    two of them, in turn."""
    from deepfolder.agent.pipeline import SectionPlan, section_evidence

    ctx = _context(tmp_path, with_video=False)
    state = run_state(ctx, REQUEST, FunctionModel(_writer, is_local=True))
    state.brief = build_brief(ctx.index)
    results = []
    for i in range(5):
        src = Source(id=f"analysis_{i}", path=f"analysis_{i}.md", kind="analysis")
        results.append(Evidence(Segment.create(src.id, f"result {i}", Locator(chunk=1)), src))
    state.analysis = results
    state.section_titles = ["论文基本信息", "核心内容摘要", "关键技术解析"]
    state.data_sections = ["（2）核心内容摘要"]
    given = {}
    for label, title in [("（2）", "核心内容摘要"), ("（3）", "关键技术解析")]:
        plan = SectionPlan(label, title, 300)
        steps = section_evidence(state, plan)
        try:
            while True:
                next(steps)
        except StopIteration as done:
            given[title] = [e.source.id for e in done.value if e.source.kind == "analysis"]
    assert given["核心内容摘要"] == [f"analysis_{i}" for i in range(5)]  # the data section: all
    assert given["关键技术解析"] == ["analysis_4", "analysis_0"]  # third section: its turn


def test_every_part_of_a_data_section_sees_the_computed_results() -> None:
    """Case 009: dealt in file-name order, the analysis came last and the first parts
    were written from raw sheet rows, citing nothing."""
    from deepfolder.agent.parts import deal

    def ev(src_id: str, kind: str, n: int) -> Evidence:
        src = Source(id=src_id, path=src_id, kind=kind)
        return Evidence(Segment.create(src.id, f"{src_id} {n}", Locator(rows=(n, n + 9))), src)

    rows = [ev("Stress.csv", "sheet", 10 * i) for i in range(6)]
    result = ev("analysis_1.md", "analysis", 0)
    groups = deal([*rows, result], 2)
    assert len(groups) == 2 and all(g[0] == result for g in groups)
    assert sorted(e.id for g in groups for e in g[1:]) == sorted(e.id for e in rows)


def test_a_section_written_from_web_pages_only_is_opened_from_the_users_files(
    tmp_path: Path,
) -> None:
    """Case 002: "典型案例分析" was written from one web page although the user's deck
    and PDF held cases; the request builds on the user's files, so one part written from
    their passages alone now opens such a section."""

    def web_lover(messages, tools):  # type: ignore[no-untyped-def]
        prompt = messages[-1]["content"]
        if "JSON" in prompt:
            return json.dumps({"queries": ["论文"]}, ensure_ascii=False)
        web = re.findall(r"\[\d+\] （网页[^）]*）(.+)", prompt)
        own = re.findall(r"\[\d+\] （用户文件[^）]*）(.+)", prompt)
        return "".join(e.strip() + "。" for e in (web or own)[:2])

    ctx = _context(tmp_path, with_video=False)
    request = REQUEST.replace("及相关视频", "，并结合公开可查的网页资料")
    state = run_state(ctx, request, FunctionModel(web_lover, is_local=True))
    state.brief = build_brief(ctx.index)
    assert state.primary
    steps = list(run_pipeline(state))
    notes = [s.message for s in steps if isinstance(s, NoteStep)]
    assert any("opened from the user's files" in m for m in notes), notes
    user_ids = {
        Segment.create("DPO.pdf", t, Locator(page=p, chunk=1), seq=p).id
        for p, t in PAPER_PAGES.items()
    }
    for title, body in _sections(steps[-1].text).items():
        assert set(re.findall(r"E[0-9a-f]{8}", body)) & user_ids, f"{title}: {body}"


def test_an_analysed_table_is_shown_as_its_computed_results_not_its_rows(
    tmp_path: Path,
) -> None:
    """Case 008: shown a wide CSV's raw rows beside its computed results, the small
    model wrote "阿富汗：累计确诊人数超过7896人" from numbers in the rows."""
    from deepfolder.agent.pipeline import SectionPlan, section_evidence

    ctx = _context(tmp_path, with_video=False)
    sheet = Source(id="cases.csv", path="cases.csv", kind="sheet")
    rows = Segment.create(
        sheet.id,
        "Afghanistan,DPO,7896,7896,7896 Direct Preference Optimization",
        Locator(rows=(2, 3)),
    )
    ctx.index.add([sheet], [rows])
    state = run_state(ctx, REQUEST, FunctionModel(_writer, is_local=True))
    state.brief = build_brief(ctx.index)
    src = Source(id="analysis_1", path="analysis_1.md", kind="analysis")
    result = Evidence(Segment.create(src.id, "合计随时间变化: 676,570,149", Locator(chunk=1)), src)
    state.analysis, state.analysed = [result], {"cases.csv"}
    state.section_titles = ["核心内容摘要"]
    ctx.settings.agent.section_evidence = 12
    steps = section_evidence(state, SectionPlan("（2）", "核心内容摘要", 600))
    try:
        while True:
            next(steps)
    except StopIteration as done:
        given = done.value
    assert result in given
    assert all(e.source.id != "cases.csv" for e in given)


def test_a_section_in_general_terms_opens_with_the_computed_finding(tmp_path: Path) -> None:
    """Case 009: "（5）干预对策与实施计划", shown the computed results of the user's survey,
    was written in general terms twice (cites nothing of the user's); the computation's
    main finding, quoted as printed, now opens it."""
    from deepfolder.agent.pipeline import SectionPlan, write_section

    def general(messages, tools):  # type: ignore[no-untyped-def]
        if "JSON" in messages[-1]["content"]:
            return json.dumps({"queries": ["对策"]}, ensure_ascii=False)
        return "应当加强心理辅导与家校合作，帮助学生缓解压力，营造良好的校园氛围。"

    ctx = _context(tmp_path, with_video=False)
    state = run_state(ctx, REQUEST, FunctionModel(general, is_local=True))
    state.brief = build_brief(ctx.index)
    src = Source(id="analysis_1", path="analysis_1.md", kind="analysis")
    line = "study load 与 stress levels 的相关系数 r = +0.39（中等正相关）"
    result = Evidence(Segment.create(src.id, f"相关系数:\n{line}", Locator(chunk=1)), src)
    state.analysis = [result]
    state.section_titles = ["干预对策与实施计划"]
    steps = write_section(state, SectionPlan("（5）", "干预对策与实施计划", 300))
    notes = []
    try:
        while True:
            step = next(steps)
            if isinstance(step, NoteStep):
                notes.append(step.message)
    except StopIteration as done:
        draft = done.value
    assert draft.text.startswith(f"数据分析显示，{line}[{result.id}]。"), draft.text
    assert any("opened with a computed result" in m for m in notes)
