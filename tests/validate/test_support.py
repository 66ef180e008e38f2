from __future__ import annotations

import json

import numpy as np
import pytest

from deepfolder.llm.base import ChatResponse
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.settings import ValidateSettings
from deepfolder.validate.support import (
    claim_for,
    lexical_score,
    local_verdict,
    model_verdict,
    sentence_spans,
    use_model_judge,
)

from .support_pairs import CHANGED_NUMBER, PAIRS

DEFAULTS = ValidateSettings()
SRC = Source(id="doc.pdf", path="doc.pdf", kind="pdf")


def _ev(text: str) -> Evidence:
    return Evidence(Segment.create(SRC.id, text, Locator(page=1)), SRC)


def _verdict(claim: str, evidence: str, **kw):
    return local_verdict(
        claim,
        [_ev(evidence)],
        support_threshold=DEFAULTS.support_threshold,
        weak_threshold=DEFAULTS.weak_threshold,
        **kw,
    )


def test_default_thresholds_separate_the_calibration_pairs() -> None:
    supported = [lexical_score(c, e) for c, e, label in PAIRS if label == "supported"]
    unsupported = [lexical_score(c, e) for c, e, label in PAIRS if label == "unsupported"]
    # the margin the defaults sit in (numbers recorded in docs/notes/validate.md)
    assert min(supported) >= DEFAULTS.support_threshold
    assert max(unsupported) < DEFAULTS.weak_threshold
    for claim, evidence, label in PAIRS:
        assert _verdict(claim, evidence).verdict == label, claim


def test_changed_numbers_are_never_supported() -> None:
    v = _verdict(*CHANGED_NUMBER)
    assert v.score is not None and v.score >= DEFAULTS.support_threshold  # lexically close
    assert v.verdict == "weak"
    assert v.missing_numbers == ["42%", "5.2万"]
    assert "42%" in v.reason


def test_embedding_changes_the_score() -> None:
    claim, evidence, _ = PAIRS[0]
    same = _verdict(claim, evidence, embed=lambda texts: np.ones((len(texts), 4)))
    orthogonal = _verdict(claim, evidence, embed=lambda texts: np.eye(len(texts), 4))
    assert same.score is not None and orthogonal.score is not None
    assert same.score > orthogonal.score
    assert "embedding cosine 1.00" in same.reason


class _Judge:
    """Minimal ChatModel: replies with a fixed text and records the prompt."""

    name = "fake:judge"
    context_window = 8192
    supports_native_tools = False

    def __init__(self, reply: str, *, is_local: bool = False) -> None:
        self.reply = reply
        self.is_local = is_local
        self.prompts: list[str] = []

    def chat(self, messages, **kwargs) -> ChatResponse:
        assert kwargs["json_schema"]["required"] == ["verdict", "reason"]
        self.prompts.append(messages[-1]["content"])
        return ChatResponse(content=self.reply)

    def count_tokens(self, text: str) -> int:
        return len(text)


def test_model_judge_verdict_and_fallback() -> None:
    claim, evidence, _ = PAIRS[0]
    local = _verdict(claim, evidence)
    judge = _Judge(json.dumps({"verdict": "unsupported", "reason": "the year differs"}))
    v = model_verdict(judge, claim, [_ev(evidence)], local)
    assert (v.verdict, v.method, v.reason) == ("unsupported", "model", "the year differs")
    assert claim in judge.prompts[0] and evidence in judge.prompts[0]

    broken = model_verdict(
        _Judge("I think it is fine"), claim, [_ev(evidence)], _verdict(claim, evidence)
    )
    assert broken.method == "local" and broken.verdict == "supported"
    assert "model judge failed" in broken.reason


@pytest.mark.parametrize(
    ("mode", "is_local", "expected"),
    [("auto", False, True), ("auto", True, False), ("model", True, True), ("local", False, False)],
)
def test_when_the_model_judges(mode: str, is_local: bool, expected: bool) -> None:
    assert use_model_judge(mode, _Judge("{}", is_local=is_local)) is expected
    assert use_model_judge(mode, None) is False


def test_citation_after_full_stop_belongs_to_previous_sentence() -> None:
    text = "第一句说了事实。[E1234abcd]第二句另有内容[E5678ef01]。"
    spans = sentence_spans(text)
    s, e = claim_for(text, text.index("[E1234abcd]"), spans)
    assert text[s:e] == "第一句说了事实。"
    s, e = claim_for(text, text.index("[E5678ef01]"), spans)
    assert text[s:e].startswith("[E1234abcd]第二句另有内容")


def test_placeholder_text_is_never_supported() -> None:
    # the seed run wrote a template line as the paper's author; it overlaps its source
    # word for word, so lexical overlap alone called it supported
    source = "基于深度学习的图像分割方法综述 作者为xxx20xx-07-16 汇报人：xxx"
    v = _verdict("该论文作者为xxx20xx-07-16。", source)
    assert v.verdict == "unsupported"
    assert v.reason.startswith("placeholder text in the source ('xxx')")
    assert v.template == "xxx"
    own = _verdict("本文的汇报人为[姓名]。", "本文介绍图像分割的主要方法。")
    assert own.verdict == "unsupported" and "placeholder text in the claim" in own.reason


def test_filler_is_not_supported_by_word_overlap() -> None:
    v = _verdict("本报告中的数据仅用于示例演示。", "注：本报告中的数据仅用于示例演示。")
    assert v.verdict == "unsupported"
    assert "filler with no factual content" in v.reason
    english = _verdict(
        "These figures are for illustration purposes only.",
        "Note: these figures are for illustration purposes only.",
    )
    assert english.verdict == "unsupported"


def test_template_sentences_of_the_evidence_lend_no_words() -> None:
    evidence = (
        "单击此处添加文本，介绍直播带货平台的主要责任和义务。"
        "2023年我国直播电商交易规模达4.9万亿元。"
    )
    claim = "直播带货平台承担主要的责任和义务。"
    assert lexical_score(claim, evidence) >= DEFAULTS.support_threshold  # the old scoring
    assert _verdict(claim, evidence).verdict == "unsupported"
    # a real fact next to the template line is still supported
    assert _verdict("2023年我国直播电商交易规模达4.9万亿元。", evidence).verdict == "supported"


def test_the_model_judge_is_not_asked_about_template_text(evidence, by_id, seen) -> None:
    from deepfolder.request_model import parse_request
    from deepfolder.settings import Settings
    from deepfolder.validate.checks import validate_report

    from .reports import REQUEST, good_report

    text = good_report(evidence).replace(
        "行业快速扩张的同时",
        f"本报告中的数据仅用于示例演示[{evidence['pdf5'].id}]。行业快速扩张的同时",
    )
    judge = _Judge(json.dumps({"verdict": "supported", "reason": "the evidence says it"}))
    settings = Settings.model_validate({"validate": {"support_judge": "model"}})
    report = validate_report(
        text,
        parse_request(REQUEST),
        resolve=by_id.get,
        seen_ids=seen,
        judge=judge,
        settings=settings,
    )
    [filler] = [v for v in report.verdicts if "示例演示" in v.sentence]
    assert (filler.verdict, filler.method) == ("unsupported", "local")
    assert all("示例演示" not in p for p in judge.prompts)
    assert len(judge.prompts) == len(report.verdicts) - 1


PAPER = (
    "Direct Preference Optimization (DPO) eliminates the need for fitting a reward model and "
    "for reinforcement learning. Using the Bradley-Terry preference model we derive a simple "
    "binary cross-entropy loss. DPO exceeds PPO's best-case performance on summarization, "
    "with a win rate of about 61% at temperature 0."
)


@pytest.mark.parametrize(
    ("claim", "verdicts"),
    [
        ("DPO 不需要训练单独的奖励模型，也不需要强化学习。", {"supported"}),
        ("该方法基于Bradley-Terry偏好模型推导出一个简单的二元交叉熵损失。", {"supported"}),
        ("在摘要任务上，DPO的胜率约为61%，超过了PPO。", {"supported"}),
        ("直播带货平台应当承担审核义务。", {"unsupported"}),
        ("学生压力的主要来源是学业负担。", {"unsupported"}),
    ],
)
def test_a_chinese_claim_about_an_english_source(claim: str, verdicts: set[str]) -> None:
    from deepfolder.validate.support import _encoder

    if _encoder() is None:
        pytest.skip("the dense extra (multilingual sentence encoder) is not installed")
    src = Source(id="DPO.pdf", path="DPO.pdf", kind="pdf")
    ev = Evidence(Segment.create("DPO.pdf", PAPER, Locator(page=2)), src)
    v = local_verdict(claim, [ev], support_threshold=0.35, weak_threshold=0.2)
    assert v.verdict in verdicts, v.reason
    assert v.reason.startswith("cross-lingual")
