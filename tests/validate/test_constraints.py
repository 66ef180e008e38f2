from __future__ import annotations

import pytest

from deepfolder.request_model import (
    LengthRule,
    RequiredSection,
    parse_length,
    parse_number,
    parse_request,
    parse_sections,
)

from .conftest import QUERIES, real_queries


@pytest.mark.parametrize(
    ("text", "lo", "hi", "unit"),
    [
        ("写一篇2000至3000字的报告", 2000, 3000, "字"),
        ("2000到3000字", 2000, 3000, "字"),
        ("2000-3000字", 2000, 3000, "字"),
        ("2000–3000字", 2000, 3000, "字"),
        ("2000~3000字", 2000, 3000, "字"),
        ("2000～3000字", 2000, 3000, "字"),
        ("2000字至3000字", 2000, 3000, "字"),
        ("篇幅在1500至2000之间", 1500, 2000, "字"),
        ("全文字数控制在 1200–1500 字之间。", 1200, 1500, "字"),
        ("字数要求：字数在800-1000字。", 800, 1000, "字"),
        ("字数在2000至3000字", 2000, 3000, "字"),
        ("不少于2000字", 2000, None, "字"),
        ("不低于1500字", 1500, None, "字"),
        ("至少800字", 800, None, "字"),
        ("3000字以上", 3000, None, "字"),
        ("不超过3000字", None, 3000, "字"),
        ("不多于500字", None, 500, "字"),
        ("1000字以内", None, 1000, "字"),
        ("控制在800字", None, 800, "字"),
        ("控制在800字以内", None, 800, "字"),
        ("3000字左右", 2700, 3300, "字"),
        ("约1000字", 900, 1100, "字"),
        ("不少于800字，不超过1000字", 800, 1000, "字"),
        ("两千至三千字", 2000, 3000, "字"),
        ("1.5万字左右", 13500, 16500, "字"),
        ("3千字以内", None, 3000, "字"),
        ("between 800 and 1000 words", 800, 1000, "words"),
        ("800-1000 words", 800, 1000, "words"),
        ("at least 500 words", 500, None, "words"),
        ("at most 300 words", None, 300, "words"),
        ("no more than 1,200 words", None, 1200, "words"),
        ("about 600 words", 540, 660, "words"),
        ("a 500-word summary", 450, 550, "words"),
    ],
)
def test_every_length_form(text: str, lo: int | None, hi: int | None, unit: str) -> None:
    rule = parse_length(text)
    assert rule is not None, text
    assert (rule.min, rule.max, rule.unit) == (lo, hi, unit)


def test_year_ranges_are_not_lengths() -> None:
    assert parse_length("结合2023–2025年的典型案例，分析2023至2025之间的变化") is None


def test_length_rule_contains_and_describe() -> None:
    rule = LengthRule(800, 1000, "字", "800-1000字")
    assert rule.contains(800) and rule.contains(1000) and not rule.contains(1001)
    assert rule.describe() == "800–1000 字"
    assert rule.target == 900


def test_chinese_numbers() -> None:
    assert parse_number("两千五百") == 2500
    assert parse_number("一万二千") == 12000
    assert parse_number("十五") == 15
    assert parse_number("2,000") == 2000


def test_section_list_styles() -> None:
    ascii_parens = parse_sections("包含：(1) Introduction; (2) Method; (3) Results.")
    assert [s.title for s in ascii_parens] == ["Introduction", "Method", "Results"]
    dotted = parse_sections("结构如下：1. 引言 2. 方法 3. 结论。")
    assert [s.title for s in dotted] == ["引言", "方法", "结论"]
    chinese = parse_sections("分为：一、背景；二、现状；三、建议。")
    assert [(s.label, s.title) for s in chinese] == [
        ("一、", "背景"),
        ("二、", "现状"),
        ("三、", "建议"),
    ]
    colon = parse_sections("报告包含以下章节：背景、现状分析、对策建议。")
    assert [s.title for s in colon] == ["背景", "现状分析", "对策建议"]
    english = parse_sections("Please include sections: Background, Findings, and Outlook.")
    assert [s.title for s in english] == ["Background", "Findings", "Outlook"]


def test_format_style_language_figures() -> None:
    c = parse_request("请用英文写一份报告，返回html格式，不要分点，配图说明。")
    assert (c.format, c.language, c.no_bullets, c.wants_figures) == ("html", "en", True, True)
    e = parse_request("Write a report in HTML about the data, at least 500 words, with charts.")
    assert (e.format, e.language, e.wants_figures) == ("html", "en", True)
    assert e.length == LengthRule(500, None, "words", "at least 500 words")
    plain = parse_request("写一篇关于直播电商的分析，3000字左右。")
    assert (plain.format, plain.language, plain.no_bullets, plain.wants_figures) == (
        "markdown",
        "zh",
        False,
        False,
    )


@pytest.mark.data
@pytest.mark.skipif(not QUERIES.exists(), reason="../shared/data is absent")
def test_real_requests() -> None:
    q = real_queries()
    c002 = parse_request(q["002"])
    assert [(s.label, s.title) for s in c002.sections] == [
        ("（1）", "引言"),
        ("（2）", "避风港原则的法律框架与关键内涵"),
        ("（3）", "直播带货行业的典型案例分析（2023–2025）"),
        ("（4）", "原则在直播场景中的适用性讨论"),
        ("（5）", "合规建议与未来趋势"),
        ("（6）", "参考资料"),
    ]
    assert (c002.length.min, c002.length.max) == (1200, 1500)  # type: ignore[union-attr]
    assert c002.reference_section == "参考资料"
    assert c002.title == "避风港原则在直播带货场景中的适用性分析报告"
    assert (c002.format, c002.language, c002.wants_figures) == ("markdown", "zh", False)

    c008 = parse_request(q["008"])
    assert [s.title for s in c008.sections] == [
        "报告标题",
        "核心数据摘要",
        "数据明细板块",
        "简要提示",
    ]
    assert c008.sections[0].is_title
    assert c008.sections[1] == RequiredSection(
        "（2）", "核心数据摘要", 2, "需要在一页内概括关键指标和不同时间段的数据波动情况"
    )
    assert (c008.length.min, c008.length.max) == (800, 1000)  # type: ignore[union-attr]
    assert (c008.format, c008.wants_figures, c008.reference_section) == ("markdown", True, None)

    c009 = parse_request(q["009"])
    assert [s.title for s in c009.sections] == [
        "引言与数据概况",
        "学生压力现状分析",
        "压力影响因素关联分析",
        "高风险群体与问题诊断",
        "干预对策与实施计划",
        "效果评估与风险预案",
    ]
    assert (c009.length.min, c009.length.max) == (2000, 3000)  # type: ignore[union-attr]
    assert (c009.format, c009.wants_figures, c009.language) == ("markdown", True, "zh")


@pytest.mark.parametrize(
    ("request_text", "kinds"),
    [
        ("请结合我提供的论文及相关视频，撰写一篇读书报告", ["paper", "video"]),
        ("Summarise the attached report in 500 words.", ["document"]),
        ("基于提供的学生数据集，分析压力因素", ["data"]),
        ("请你基于我提供的 PPT 内容写一份报告", ["slides"]),
        ("根据提供的Excel数据撰写分析", ["data"]),
        ("根据提供的Excel数据和数据说明文档，撰写报告", ["data", "document"]),
        ("请根据我上传的录音整理会议纪要", ["audio"]),
        ("Using the dataset I uploaded, describe the trends.", ["data"]),
        ("Write a review of this paper and the provided slides.", ["paper", "slides"]),
        ("根据所附材料写一篇综述", []),
    ],
)
def test_requests_that_build_on_the_users_material(request_text: str, kinds: list[str]) -> None:
    c = parse_request(request_text)
    assert c.refers_to_user_material, request_text
    assert c.material_kinds == kinds


@pytest.mark.parametrize(
    "request_text",
    [
        "结合公开资料，撰写一篇关于直播电商的报告",
        "参考公开可查的权威数据集进行分析，撰写报告",
        "平台所提供的服务存在哪些合规风险？请写一篇分析",
        "国家统计局提供的数据显示零售额增长，请分析原因",
        "In this report, discuss the causes of inflation using public data.",
        "Given the data on GDP, write a short essay.",
        "Use World Bank figures, provided that the data are public.",
        "Discuss the shared responsibility model of platforms and regulators.",
        "撰写一篇《新冠疫情监测报告》，字数800字",
    ],
)
def test_public_sources_are_not_the_users_material(request_text: str) -> None:
    c = parse_request(request_text)
    assert not c.refers_to_user_material, request_text
    assert c.material_kinds == []


@pytest.mark.parametrize(
    ("request_text", "name"),
    [
        ("请阅读这篇综述，整理一份各论文Benchmark信息汇总表", "各论文Benchmark信息汇总表"),
        (
            "包含以下章节：（1）引言；（2）各论文Benchmark信息汇总表；（3）结论",
            "各论文Benchmark信息汇总表",
        ),
        ("报告末尾附上“主要模型对比表”", "主要模型对比表"),
        ("请以表格形式对比三种方法的优缺点", None),
        ("制作一张对比表，列出各方法的参数量", "对比表"),
        ("Write an overview and include a summary table of the benchmarks.", "summary table"),
        ("Present the results in a table.", None),
    ],
)
def test_requests_for_a_table(request_text: str, name: str | None) -> None:
    c = parse_request(request_text)
    assert c.wants_table, request_text
    assert c.table_name == name


@pytest.mark.parametrize(
    "request_text",
    [
        "报告需图文并茂，图表结合，绘制统计图表",
        "不要使用表格，请以表格之外的段落形式写作",
        "附上参考文献列表，并说明发表年份和代表人物",
        "根据提供的Excel数据表进行分析",
        "Write a report with a table of contents and an introduction.",
        "Do not use tables.",
    ],
)
def test_no_table_is_asked_for(request_text: str) -> None:
    c = parse_request(request_text)
    assert not c.wants_table, request_text
    assert c.table_name is None


@pytest.mark.data
@pytest.mark.skipif(not QUERIES.exists(), reason="../shared/data is absent")
def test_real_requests_build_on_the_users_material() -> None:
    q = real_queries()
    found = {
        task: (c.refers_to_user_material, c.material_kinds, c.wants_table)
        for task, c in ((t, parse_request(q[t])) for t in ("002", "008", "009"))
    }
    assert found == {
        "002": (True, ["slides"], False),  # 基于我提供的 PPT 内容
        "008": (True, ["data"], False),  # 基于提供的两份Excel材料; 图表结合 is charts
        "009": (True, ["data", "document"], False),  # 提供的Excel数据和数据说明文档
    }


def test_an_instruction_after_the_last_section_is_not_part_of_its_title() -> None:
    c = parse_request(
        "请基于我提供的论文及相关视频，写一篇2000至3000字的论文阅读报告，包含（1）论文基本信息；"
        "（2）核心内容摘要；（3）关键技术解析；（4）视频补充内容，标注来源。"
    )
    assert [s.title for s in c.sections][-1] == "视频补充内容"
    kept = parse_request("包含（1）背景；（2）风险，机遇与挑战。")
    assert kept.sections[-1].title == "风险，机遇与挑战"
