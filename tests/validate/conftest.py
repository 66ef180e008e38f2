"""Shared evidence for the validator tests: a tiny, hand-made run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.records import Evidence, Locator, Segment, Source

_REPO = Path(__file__).resolve().parents[2]
# ../shared/data beside the checkout; a worktree one folder deeper finds it one level up
DATA = next(
    (
        p
        for p in (_REPO.parent / "shared" / "data", _REPO.parents[1] / "shared" / "data")
        if p.is_dir()
    ),
    _REPO.parent / "shared" / "data",
)
QUERIES = DATA / "cases" / "query.jsonl"


def real_queries() -> dict[str, str]:
    return {
        row["task"]: row["query"]
        for row in map(json.loads, QUERIES.read_text(encoding="utf-8").splitlines())
        if row
    }


PDF = Source(id="直播电商高质量发展.pdf", path="直播电商高质量发展.pdf", kind="pdf")
ARTICLE = Source(
    id="long_context_sampled_32k.json#3",
    path="long_context_sampled_32k.json",
    kind="article",
    title="直播带货新规解读",
    article=3,
)
VIDEO = Source(id="lecture.mp4", path="lecture.mp4", kind="video")
SHEET = Source(id="stress.csv", path="data/stress.csv", kind="sheet")

TEXTS = {
    "pdf5": (
        PDF,
        Locator(page=5),
        "数据显示，2023年我国直播电商交易规模达4.9万亿元，同比增长35%，"
        "占网络零售总额的比重进一步提升。",
    ),
    "pdf6": (
        PDF,
        Locator(page=6),
        "根据避风港原则，网络服务提供者接到权利人的通知后，应当及时采取删除、屏蔽、断开链接等"
        "必要措施，否则对损害的扩大部分承担连带责任。",
    ),
    "article": (
        ARTICLE,
        Locator(article=3, chunk=2),
        "法院认为，平台从主播带货中直接获取经济利益的，应当对主播及其推广的商品负有更高的审核"
        "注意义务。",
    ),
    "video": (
        VIDEO,
        Locator(start=72.0, end=100.0),
        "讲者指出，主播在直播带货中若存在虚假宣传，可能被认定为广告发布者，承担相应的法律责任。",
    ),
    "sheet": (
        SHEET,
        Locator(rows=(2, 54)),
        "睡眠质量得分越高的学生，自评压力水平越低，两者呈显著负相关。",
    ),
    "unseen": (
        PDF,
        Locator(page=9),
        "本页讨论跨境电商的物流体系建设。",
    ),
}


@pytest.fixture
def evidence() -> dict[str, Evidence]:
    """Evidence by short name; 'unseen' is in the index but never shown to the model."""
    out = {}
    for name, (source, loc, text) in TEXTS.items():
        out[name] = Evidence(Segment.create(source.id, text, loc), source)
    return out


@pytest.fixture
def by_id(evidence: dict[str, Evidence]) -> dict[str, Evidence]:
    return {ev.id: ev for ev in evidence.values()}


@pytest.fixture
def seen(evidence: dict[str, Evidence]) -> set[str]:
    return {ev.id for name, ev in evidence.items() if name != "unseen"}
