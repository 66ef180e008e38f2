"""Report texts built from the shared test evidence (see conftest.py)."""

from __future__ import annotations

from deepfolder.records import Evidence

REQUEST = (
    "请撰写《直播带货合规分析》，包含以下章节：（1）引言；（2）法律框架；（3）案例分析；"
    "（4）参考资料。全文字数在150至400字之间。"
)


def good_report(ev: dict[str, Evidence]) -> str:
    p5, p6, art, vid = ev["pdf5"], ev["pdf6"], ev["article"], ev["video"]
    return f"""# 直播带货合规分析

## （1）引言

2023年我国直播电商交易规模达4.9万亿元，同比增长35%[{p5.id}]。行业快速扩张的同时，合规问题日益突出，本文围绕平台与主播的责任展开分析。

## （2）法律框架

根据避风港原则，网络服务提供者接到通知后应当及时采取删除、屏蔽等必要措施，否则对损害的扩大部分承担连带责任[{p6.citation_label("zh")}](#{p6.id})。

## （3）案例分析

法院认为，平台从主播带货中直接获取经济利益的，应当负有更高的审核注意义务[{art.id}]。主播若存在虚假宣传，可能被认定为广告发布者并承担法律责任[{vid.id}]。

## （4）参考资料

1. [{p5.id}] {p5.citation_label("zh")} — "{p5.segment.text[:40]}"
2. [{p6.id}] {p6.citation_label("zh")} — "{p6.segment.text[:40]}"
"""
