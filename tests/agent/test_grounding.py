"""What a request builds on, what a section is about, and what it searches with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.agent.brief import BriefFact, FileBrief, MaterialBrief
from deepfolder.agent.grounding import (
    choose_evidence,
    material_notes,
    missing_material,
    on_subject,
    section_queries,
    section_scope,
    without_identity_restatements,
)
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.request_model import material_references

CASES = Path(__file__).resolve().parents[3] / "shared" / "data" / "cases" / "query.jsonl"


@pytest.mark.parametrize(
    ("request_text", "groups"),
    [
        ("请基于我提供的论文及相关视频，写一篇论文阅读报告", {"paper", "video"}),
        ("依托我提供的 GPT-4 技术报告，写一篇分析", {"document"}),
        ("请你基于我提供的 PPT 内容，并结合典型案例撰写报告", {"slides"}),
        ("请你基于提供的两份Excel材料，撰写一篇《新冠疫情监测报告》", {"data"}),
        ("根据我提供的三张照片，制定一份三天旅行计划", {"image"}),
        ("Summarize the attached report and the video I provided.", {"document", "video"}),
        ("Write a report based on the attached data.", {"data"}),
        ("结合公开资料，写一篇关于新能源汽车的报告", set()),
        ("Write a 1000-word report on electric cars.", set()),
    ],
)
def test_requested_material(request_text: str, groups: set[str]) -> None:
    kinds = material_references(request_text)
    assert set(kinds or []) == groups
    assert (kinds is not None) == bool(groups)


@pytest.mark.data
def test_the_real_requests_build_on_their_files() -> None:
    if not CASES.exists():
        pytest.skip("shared data not present")
    found = {}
    for line in CASES.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        found[item["task"]] = set(material_references(item["query"]) or [])
    assert found == {"002": {"slides"}, "008": {"data"}, "009": {"data", "document"}}


def _file(kind: str, name: str, title: str, language: str = "en", terms=()) -> FileBrief:  # type: ignore[no-untyped-def]
    src = Source(id=name, path=name, kind=kind, title=title)
    ev = Evidence(Segment.create(name, title, Locator(page=1)), src)
    return FileBrief(src, title, [BriefFact("title", title, ev)], list(terms), language)


PAPER = _file(
    "pdf",
    "DPO.pdf",
    "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
    terms=["DPO", "RLHF", "Experiments", "Theoretical Analysis of DPO"],
)
VIDEO = _file("video", "talk.mp4", "talk.mp4", terms=["Why DPO", "Results"])


def test_sections_are_scoped_to_the_files_they_name() -> None:
    brief = MaterialBrief([PAPER, VIDEO], ["long_context.json"])
    assert section_scope("视频补充内容", brief) == [VIDEO]
    assert section_scope("论文基本信息", brief) == [PAPER]
    assert section_scope("核心内容摘要", brief) == [PAPER, VIDEO]
    # the video has a section of its own: the summary is about the paper
    assert section_scope("核心内容摘要", brief, ["论文基本信息", "视频补充内容"]) == [PAPER]
    only_paper = MaterialBrief([PAPER], [])
    assert section_scope("视频补充内容", only_paper) == []  # never the paper instead


def test_queries_for_an_english_paper_under_a_chinese_request_are_english() -> None:
    queries = section_queries("关键技术解析", [PAPER], "zh")
    assert (
        queries[0]
        == "Direct Preference Optimization DPO RLHF method objective loss derivation algorithm"
    )
    assert all("关键技术" not in q for q in queries)  # the section title matches no English text
    results = section_queries("实验结果", [PAPER], "zh")
    assert "Experiments" in results


def test_user_evidence_comes_first_and_web_pages_support() -> None:
    def ev(i: int, kind: str) -> Evidence:
        src = Source(id=f"s{i}", path=f"s{i}", kind=kind)
        return Evidence(Segment.create(src.id, f"text {i}", Locator(chunk=1)), src)

    user = [ev(i, "pdf") for i in range(3)]
    web = [ev(i, "article") for i in range(10, 16)]
    chosen = choose_evidence(user, web, 6, used=set(), primary=True, outside=False)
    assert chosen[:3] == user and len(chosen) == 6
    many = [ev(i, "pdf") for i in range(20, 28)]
    assert choose_evidence(many, web, 6, used=set(), primary=True, outside=False) == many[:6]
    assert choose_evidence(many, web, 6, used=set(), primary=True, outside=True)[6:] == web[:2]
    # passages earlier sections were given come last, one of the user's files still cited
    used = {e.id for e in user} | {web[0].id}
    later = choose_evidence(user, web, 4, used=used, primary=True, outside=False)
    assert later == [*web[1:4], user[0]]


def test_missing_and_unreadable_material_is_named() -> None:
    photo = FileBrief(
        Source(id="a.jpg", path="a.jpg", kind="image"),
        "a.jpg",
        problem="no text in the image and no vision model configured: set --vision-model",
    )
    brief = MaterialBrief([photo], ["long_context.json"])
    provided = material_references("根据我提供的三张照片，制定一份三天旅行计划") or []
    assert missing_material(provided, brief) == ["image"]
    notes = material_notes(provided, brief, "zh")
    assert notes[0].startswith("请求提到的图片不在所给文件夹中")
    assert "a.jpg 无法离线读取" in notes[1] and "--vision-model" in notes[1]
    provided = material_references("基于我提供的文章及相关视频，写读后感") or []
    assert missing_material(provided, MaterialBrief([PAPER], [])) == ["video"]


def test_the_model_does_not_restate_the_identity_the_code_states() -> None:
    """Run D's section (1): after the identity sentence, the model wrote a translated
    title as a headline, transliterated author names, the arXiv line and two copies of
    the identity sentence; what it says about the work stays."""
    title = PAPER.title
    authors = (
        "Rafael Rafailov, Archit Sharma, Eric Mitchell, Stefano Ermon, "
        "Christopher D. Manning, Chelsea Finn"
    )
    ev = PAPER.facts[0].evidence
    paper = FileBrief(
        PAPER.source, title, [*PAPER.facts, BriefFact("authors", authors, ev)], PAPER.terms, "en"
    )
    text = (
        "直接偏好优化：你的语言模型实际上是一个奖励模型\n"
        "拉斐洛夫，阿米特·沙马，埃里克·米切尔，斯特凡诺·埃罗蒙，克里斯蒂安·曼内尔。\n"
        "共同贡献；更年轻的作者位于前面。37届神经信息处理系统会议。arXiv：2305.18290v3。"
        "现有的方法需要显式的奖励模型和强化学习。我们提出直接偏好优化（DPO），它非常简单易实现。\n\n"
        "本报告解读的论文为《直接偏好优化：你的语言模型实际上是一个奖励模型》。作者为Rafael Rafailov、"
        "Archit Sharma（斯坦福大学；\n\n"
        f"The paper “{title}” was written by Rafailov and Sharma.\n\n"
        "该方法由作者提出，用于从人类偏好中训练语言模型。"
        "Direct Preference Optimization 不需要强化学习。"
    )
    kept = without_identity_restatements(text, paper)
    assert "现有的方法需要显式的奖励模型和强化学习。" in kept
    assert "我们提出直接偏好优化（DPO），它非常简单易实现。" in kept
    assert "该方法由作者提出" in kept  # "作者提出" is about the work, not a name list
    assert "Direct Preference Optimization 不需要强化学习。" in kept  # the method's name
    for gone in (
        "曼内尔",
        "arXiv",
        "本报告解读",
        "实际上是一个奖励模型\n",
        "written by",
        "共同贡献",
    ):
        assert gone not in kept, gone


def test_web_pages_support_a_section_on_the_paper_only_when_they_name_it() -> None:
    def page(i: int, text: str) -> Evidence:
        src = Source(id=f"w{i}", path="long_context.json", kind="article")
        return Evidence(Segment.create(src.id, text, Locator(article=i, chunk=1)), src)

    pages = [
        page(1, "DPO（直接偏好优化）无需训练奖励模型，近来被广泛用于大模型对齐。"),
        page(2, "治理职业弹幕人乱象，需要升级AI识别系统，实时拦截关键词堆砌的弹幕。"),
        page(3, "Direct Preference Optimization is popular for aligning chat models."),
        page(4, "The ADPOS protocol is unrelated; neither is DPOX."),  # not the word DPO
    ]
    kept = on_subject(pages, [PAPER])
    assert [e.source.id for e in kept] == ["w1", "w3"]
    sheet = _file("sheet", "stress.csv", "stress.csv")
    assert on_subject(pages, [sheet]) == pages  # a sheet names no subject: nothing filtered


def test_a_deck_is_searched_with_the_slide_titles_of_the_section() -> None:
    """Case 002: every section searched with the deck's first slide titles ("目录",
    "原则概述") and found the contents slide; the slide titles that share words with
    the section's title are the ones it needs."""
    from deepfolder.agent.grounding import related_terms

    slides = [
        "避风港原则：网络版权责任的平衡机制",
        "目录",
        "原则概述",
        "典型案例分析",
        "红旗标准应用",
    ]
    assert related_terms("直播带货行业的典型案例分析（2023–2025）", slides)[0] == "典型案例分析"
    assert "目录" not in related_terms("引言", slides)
    # nothing in common: the talk as a whole, from its first slides
    assert related_terms("视频补充内容", ["Why DPO", "Results"]) == ["Why DPO", "Results"]


def test_divider_slides_and_contents_pages_are_not_written_from() -> None:
    from deepfolder.agent.grounding import is_heading_only, with_content

    def ev(text: str, kind: str = "pptx") -> Evidence:
        src = Source(id=f"f.{kind}", path=f"f.{kind}", kind=kind)
        return Evidence(Segment.create(src.id, text, Locator(slide=1)), src)

    divider = ev("司法实践 典型案例与责任认定标准")
    contents = ev(
        "目录 一、直播电商行业发展历程与现状 ……………… 1 （一） 直播电商发展历程 ……… 1", "pdf"
    )
    case = ev(
        "斗鱼直播平台“彡彡九户外”账号的直播成员参与赌博，平台未受处罚，引发对平台监管义务的讨论。"
    )
    more_contents = ev(
        "1.催生 30 多个新职业 ………… 11 2.助力乡村振兴 ………… 11 五、高质量发展方向与建议 ………… 13 "
        "（一）人工智能加速直播电商行业发展 ………… 13",
        "pdf",
    )
    assert is_heading_only(divider) and is_heading_only(contents)
    assert is_heading_only(more_contents)
    assert not is_heading_only(case)
    assert not is_heading_only(ev("r = 0.61", "analysis"))
    assert with_content([divider, case, contents]) == [case]
    assert with_content([divider]) == [divider]  # nothing better: kept


def test_the_computed_finding_that_opens_a_section_is_quoted_as_printed() -> None:
    from deepfolder.agent.grounding import computed_lead

    src = Source(id="analysis_1", path="analysis_1.md", kind="analysis")
    text = (
        "stress.csv: 520 行 x 6\n描述统计:\n  mean std\n相关系数:\n"
        "study load 与 stress levels 的相关系数 r = +0.39（中等正相关）\n"
        "sleep 与 stress levels 的相关系数 r = +0.17（弱正相关）"
    )
    ev = Evidence(Segment.create(src.id, text, Locator(chunk=1)), src)
    lead = computed_lead([ev], "zh")
    assert (
        lead
        == f"数据分析显示，study load 与 stress levels 的相关系数 r = +0.39（中等正相关）[{ev.id}]。"
    )
    series = Evidence(
        Segment.create(
            src.id,
            "2018-01-02 to 2023-12-29: close went from 10 to 12 (+2, +20%)",
            Locator(chunk=2),
        ),
        src,
    )
    assert computed_lead([series], "en") == (
        f"The analysis of the data shows: 2018-01-02 to 2023-12-29: close went from 10 to 12 "
        f"(+2, +20%)[{series.id}]."
    )
    paper = Source(id="p.pdf", path="p.pdf", kind="pdf")
    assert (
        computed_lead(
            [Evidence(Segment.create(paper.id, "r = +0.39", Locator(page=1)), paper)], "zh"
        )
        is None
    )
