"""The grounding scorer on small hand-made run directories, and the checklist it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.eval.report_quality import (
    QualityInputError,
    body_sections,
    load_checklist,
    repeated_sentences,
    score_run_dir,
)
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.validate.command import write_evidence

REPO = Path(__file__).resolve().parents[2]
GROUNDING_CHECKLIST = REPO / "benchmarks" / "grounding_checklist.json"

PAPER = Source("DPO.pdf", "DPO.pdf", "pdf", title="DPO")
VIDEO = Source("DPO_explained.mp4", "DPO_explained.mp4", "video")
ARTICLE = Source(
    "long_context_002.json#3", "long_context_002.json", "article", title="直播新规", article=3
)
EV_PAPER = Evidence(
    Segment.create(PAPER.id, "Direct Preference Optimization ...", Locator(page=1)), PAPER
)
EV_VIDEO = Evidence(
    Segment.create(VIDEO.id, "beta equal to zero point one", Locator(start=60.0, end=72.0)),
    VIDEO,
)
EV_ARTICLE = Evidence(
    Segment.create(ARTICLE.id, "直播带货监管", Locator(article=3, chunk=0)), ARTICLE
)

CHECKLIST = {
    "facts": [
        {"id": "title", "description": "title", "groups": [["Direct Preference Optimization"]]},
        {
            "id": "authors",
            "description": "three authors",
            "groups": [["Rafailov"], ["Sharma"], ["Mitchell"], ["Finn"]],
            "min_groups": 3,
        },
        {"id": "bt", "description": "Bradley-Terry", "groups": [["Bradley[- ]Terry"]]},
        {"id": "beta", "description": "beta 0.1", "groups": [["β\\s*=\\s*0\\.1"]]},
    ]
}

REPEATED = "DPO直接利用偏好数据优化语言模型策略，无需训练单独的奖励模型。"

REPORT = f"""# 论文阅读报告

## （1）论文基本信息

论文题为 Direct Preference Optimization，作者为 Rafailov、Sharma 与 Finn 等。[DPO.pdf, 第1页](#{EV_PAPER.id})

## （2）核心内容摘要

{REPEATED}[DPO.pdf, 第1页](#{EV_PAPER.id})
{REPEATED.replace("单独的", "单独")}

### 2.1 背景

直播带货的监管也在加强。[long_context_002: "直播新规"](#{EV_ARTICLE.id})

## （3）关键技术解析

该方法没有使用任何额外的技术细节描述。[long_context_002: "直播新规"](#{EV_ARTICLE.id})[E00000000]

## （4）视频补充内容

视频指出 β = 0.1 是常用设置。[DPO_explained.mp4, 01:00–01:12](#{EV_VIDEO.id})

## 参考来源

1. [E{EV_PAPER.id[1:]}] DPO.pdf — Bradley-Terry model, Mitchell
"""


def make_run_dir(tmp_path: Path, report: str = REPORT) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.md").write_text(report, encoding="utf-8")
    evidence = [EV_PAPER, EV_VIDEO, EV_ARTICLE]
    write_evidence(run / "evidence.jsonl", evidence, {e.id for e in evidence})
    checks = [
        {"name": "citations resolve", "passed": False, "severity": "error"},
        {"name": "length", "passed": True, "severity": "error"},
    ]
    (run / "validation.json").write_text(
        json.dumps({"passed": False, "round": 2, "checks": checks}), encoding="utf-8"
    )
    (run / "usage.json").write_text(json.dumps({"wall_seconds": 612.5}), encoding="utf-8")
    return run


@pytest.fixture
def checklist(tmp_path: Path) -> Path:
    path = tmp_path / "checklist.json"
    path.write_text(json.dumps(CHECKLIST), encoding="utf-8")
    return path


def test_scores_a_run_dir(tmp_path: Path, checklist: Path) -> None:
    q = score_run_dir(make_run_dir(tmp_path), load_checklist(checklist))

    # Bradley-Terry is only in the reference list, so it is not a fact the report states;
    # three of four authors are named in prose (min_groups 3).
    assert q.facts_found == ["title", "authors", "beta"]
    assert q.facts_missing == ["bt"]
    assert q.fact_recall == pytest.approx(0.75)

    # Body citations: paper ×2, article ×2, video ×1, plus one id with no evidence.
    assert (q.citations, q.unresolved_citations, q.user_citations) == (6, 1, 3)
    assert q.user_citation_share == pytest.approx(3 / 5)

    # Four body sections; 2.1 belongs to (2); (3) cites only a background article.
    assert [s.title for s in q.sections] == [
        "（1）论文基本信息",
        "（2）核心内容摘要",
        "（3）关键技术解析",
        "（4）视频补充内容",
    ]
    assert [s.cites_user_material for s in q.sections] == [True, True, False, True]
    assert q.sections_citing_user_share == pytest.approx(0.75)

    assert len(q.repeated) == 1
    assert q.repeated[0].earlier == REPEATED
    assert q.repeated_share == pytest.approx(1 / q.sentences)

    assert q.validation == {
        "passed": False,
        "round": 2,
        "passed_checks": ["length"],
        "failed_checks": ["citations resolve (error)"],
    }
    assert q.run_seconds == pytest.approx(612.5)
    data = q.to_dict()
    assert data["fact_recall"] == pytest.approx(0.75) and data["length_zi"] == q.length_zi


def test_a_report_without_citations_or_headings(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, "DPO 是一种偏好优化方法。它很简单。\n")
    q = score_run_dir(run)
    assert q.fact_recall is None  # no checklist given
    assert q.citations == 0 and q.user_citation_share is None
    assert len(q.sections) == 1 and q.sections_citing_user_share == 0.0
    assert q.sentences == 0 and q.repeated_share is None  # both sentences are short


def test_repeated_sentences_need_near_identity_and_length() -> None:
    first = "直接偏好优化把奖励函数改写为策略与参考模型的对数比，从而省去了强化学习。"
    near = "直接偏好优化把奖励函数改写为策略与参考模型的对数比，从而省去强化学习。"
    other = "实验覆盖情感生成、文本摘要和单轮对话三个任务，并用GPT-4评估胜率。"
    count, repeats = repeated_sentences(f"{first}{other}{near}短句重复。短句重复。")
    assert count == 3
    assert [(r.sentence, r.earlier) for r in repeats] == [(near, first)]
    assert repeats[0].similarity >= 0.85


def test_body_sections_skip_the_title_and_the_references() -> None:
    md = "# 报告\n\n导语。\n\n## 一\n\n甲。\n\n### 一.1\n\n乙。\n\n## 二\n\n丙。\n\n## 参考资料\n\n1. x\n"
    sections = body_sections(md)
    assert [t for t, _ in sections] == ["一", "二"]
    assert "乙" in sections[0][1] and "参考" not in sections[1][1]


def test_run_seconds_from_the_trace_when_usage_is_missing(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    (run / "usage.json").unlink()
    lines = [json.dumps({"kind": "task", "at": 100.0}), json.dumps({"kind": "note", "at": 190.5})]
    (run / "trace.jsonl").write_text("\n".join(lines) + '\n{"kind": "mo', encoding="utf-8")
    assert score_run_dir(run).run_seconds == pytest.approx(90.5)


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(QualityInputError, match=r"no report\.md"):
        score_run_dir(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"facts": [{"id": "x", "description": "x", "groups": [[]]}]}))
    with pytest.raises(QualityInputError, match=r"bad\.json"):
        load_checklist(bad)
    bad.write_text(
        json.dumps({"facts": [{"id": "x", "description": "x", "groups": [["a"]], "min_groups": 2}]})
    )
    with pytest.raises(QualityInputError, match="min_groups"):
        load_checklist(bad)


# --- the grounding case's own checklist ------------------------------------------------

GOOD_READING_REPORT = """
论文《Direct Preference Optimization: Your Language Model is Secretly a Reward Model》由斯坦福大学的
Rafael Rafailov、Archit Sharma、Eric Mitchell、Stefano Ermon、Christopher D. Manning 和 Chelsea Finn
完成，发表于 NeurIPS 2023。RLHF 流程复杂且常常不稳定：先拟合奖励模型，再用 PPO 做强化学习。
DPO 在 Bradley-Terry 偏好模型下通过变量替换，把带 KL 约束的奖励最大化目标改写为简单的二元交叉熵损失，
无需显式奖励模型，也不需要强化学习。策略与参考模型的对数比乘以 β 就是隐式奖励。
实验覆盖 IMDb 情感生成、Reddit TL;DR 摘要任务和 Anthropic HH 单轮对话；在 TL;DR 上，GPT-4 评判的胜率
DPO 约为 61%，PPO 为 57%，DPO 的表现优于 PPO。视频还补充了实践设置：β = 0.1、批量大小 64、RMSprop
优化器。局限在于只验证了 6B 以内的模型，分布外泛化仍待研究。
"""

UNRELATED_REPORT = """
避风港原则最早见于美国《数字千年版权法》，平台在接到通知后及时删除侵权内容即可免责。2023年以来，
直播带货中的虚假宣传、售后纠纷频发，主播与平台的责任边界日益复杂。监管部门要求平台建立事前审核、
事中监测和事后处置机制，并对头部主播实施分级管理。新冠疫情期间确诊病例与死亡人数的波动，以及学生
压力的影响因素分析，都说明数据来源必须真实、准确、可验证。
"""


def test_grounding_checklist_is_complete_and_specific() -> None:
    facts = load_checklist(GROUNDING_CHECKLIST)
    assert 10 <= len(facts) <= 15
    assert {f.source for f in facts} >= {"paper", "video"}
    missed = [f.id for f in facts if not f.found_in(GOOD_READING_REPORT)]
    assert missed == []
    # Background about the other cases' topics must not count as facts about DPO.
    matched = [f.id for f in facts if f.found_in(UNRELATED_REPORT)]
    assert matched == []
