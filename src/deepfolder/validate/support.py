"""Does the cited evidence support the sentence that cites it?

Two judges, one verdict type (supported / weak / unsupported, with a score and a reason):

- **local** (always available, deterministic): how much of the claim the evidence covers.
  ``score = 0.5 · token coverage + 0.5 · CJK-bigram coverage`` — the share of the claim's
  content tokens (rjieba words for Chinese, lower-cased words for English, stop words
  removed) and of its CJK character bigrams that also occur in the evidence. Bigrams make
  the score robust to segmentation differences (``直播带货`` vs ``直播 带货``). With an
  injected ``embed`` function the score becomes ``0.6 · lexical + 0.4 · rescaled cosine``.
  A number in the claim (``35%``, ``2,000``) that the evidence does not contain caps the
  verdict at *weak*: a changed figure is the commonest unsupported claim.
  Template text (:mod:`.placeholders`: ``xxx``, ``20xx``, ``[姓名]``, demo disclaimers such
  as ``仅用于示例演示``) is never a fact: a claim holding it is *unsupported* whatever the
  overlap, and sentences of the evidence holding it are left out before scoring, so a
  template line cannot lend its words to a claim.
  Thresholds: ``settings.validate.support_threshold`` / ``weak_threshold``, calibrated on
  the hand-made pairs in tests/validate/test_support.py (see docs/notes/validate.md).
- **model**: a :class:`~deepfolder.llm.base.ChatModel` asked for JSON
  ``{"verdict": …, "reason": …}`` (its prompt: :mod:`deepfolder.prompts.judge`). Any
  failure (model error, unparsable reply) falls back to the local verdict, and the
  reason says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from deepfolder.llm.base import ChatModel, ModelError
from deepfolder.prompts.judge import judge_prompt
from deepfolder.records import Evidence
from deepfolder.request_model import cjk_ratio
from deepfolder.validate.citations import remove_citations
from deepfolder.validate.placeholders import template_text, without_template_sentences

Verdict = Literal["supported", "weak", "unsupported"]
Embedder = Callable[[list[str]], np.ndarray]

_STOP_ZH_WORDS = (
    "的 了 是 在 和 与 及 或 等 也 都 而 并 对 从 以 为 其 之 于 被 把 将 由 这 那 该 此 有 个 "
    "中 上 下 我们 他们 我 你 他 她 它 一个 一种 进行 通过 可以 已经 以及 因此 同时 其中 "
    "对于 根据 显示 表明 指出 认为 报告 数据 研究 情况 方面 相关 主要 重要"
)
_STOP_EN_WORDS = (
    "a an the of to in on for and or but is are was were be been being by with as at from "
    "that this these those it its their there which who whom than then also into about "
    "over such may can could would should has have had not no do does did report data "
    "shows show showed according"
)
_STOP_ZH = set(_STOP_ZH_WORDS.split())
_STOP_EN = set(_STOP_EN_WORDS.split())
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*\s*[%％万亿千百]?")


@dataclass(slots=True)
class SupportVerdict:
    sentence: str
    evidence_ids: list[str]
    verdict: Verdict
    score: float | None
    reason: str
    method: Literal["local", "model"]
    evidence_text: str = ""
    missing_numbers: list[str] = field(default_factory=list)
    template: str = ""
    """The template text the claim holds (``xxx``, ``仅用于示例演示``), if any."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "evidence_ids": self.evidence_ids,
            "verdict": self.verdict,
            "score": None if self.score is None else round(self.score, 3),
            "reason": self.reason,
            "method": self.method,
            "missing_numbers": self.missing_numbers,
            "template": self.template,
            "evidence_text": self.evidence_text,
        }


def content_tokens(text: str) -> list[str]:
    """Content words of ``text``: rjieba for CJK, lower-cased words otherwise."""
    import rjieba  # the Rust jieba used by the index as well

    tokens = []
    for tok in rjieba.cut(text.lower()):
        tok = tok.strip()
        if not tok or not re.search(r"\w", tok) or tok in _STOP_ZH or tok in _STOP_EN:
            continue
        if re.fullmatch(r"[\u4e00-\u9fff]", tok):
            continue  # single characters carry little meaning alone; bigrams cover them
        tokens.append(tok)
    return tokens


def _cjk_bigrams(text: str) -> set[str]:
    grams: set[str] = set()
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[\s,]", "", n).replace("％", "%") for n in _NUMBER.findall(text)}


def lexical_score(claim: str, evidence: str) -> float:
    claim_tokens = set(content_tokens(claim))
    ev_lower = evidence.lower()
    ev_tokens = set(content_tokens(evidence))
    token_cov = (
        sum(1 for t in claim_tokens if t in ev_tokens or t in ev_lower) / len(claim_tokens)
        if claim_tokens
        else 0.0
    )
    grams = _cjk_bigrams(claim)
    if not grams:
        return token_cov
    gram_cov = len(grams & _cjk_bigrams(evidence)) / len(grams)
    return 0.5 * token_cov + 0.5 * gram_cov


def missing_numbers(claim: str, evidence: str) -> list[str]:
    """Numbers stated in the claim that the evidence does not contain (years of 4 digits
    included: a wrong year is a wrong claim)."""
    have = {n.rstrip("%万亿千百") for n in _numbers(evidence)}
    return sorted(n for n in _numbers(claim) if n.rstrip("%万亿千百") not in have)


def local_verdict(
    claim: str,
    evidence: Sequence[Evidence],
    *,
    support_threshold: float,
    weak_threshold: float,
    embed: Embedder | None = None,
) -> SupportVerdict:
    text = "\n".join(ev.segment.text for ev in evidence)
    ids = [ev.id for ev in evidence]
    template = template_text(claim)
    if template is not None:
        kind, found = template
        where = "in the source" if found.lower() in text.lower() else "in the claim"
        what = "placeholder text" if kind == "placeholder" else "filler with no factual content"
        reason = f"{what} {where} ('{found}'): a template line is not a fact"
        return SupportVerdict(claim, ids, "unsupported", 0.0, reason, "local", text, [], found)
    clean = without_template_sentences(text)
    score = lexical_score(claim, clean)
    how = f"lexical overlap {score:.2f}"
    cross = crosslingual_score(claim, clean) if _cross_script(claim, clean) else None
    if cross is not None:
        score, how = cross
    elif embed is not None:
        vectors = np.asarray(embed([claim, text]), dtype=float)
        a, b = vectors[0], vectors[1]
        cosine = float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
        # unrelated sentences of one language already sit around 0.3 in common
        # multilingual models; rescale so that 0.3 → 0 and 0.8 → 1
        rescaled = min(1.0, max(0.0, (cosine - 0.3) / 0.5))
        score = 0.6 * score + 0.4 * rescaled
        how += f", embedding cosine {cosine:.2f}"
    missing = missing_numbers(claim, text)
    if score >= support_threshold:
        verdict: Verdict = "supported"
    elif score >= weak_threshold:
        verdict = "weak"
    else:
        verdict = "unsupported"
    reason = f"{how} (supported ≥ {support_threshold}, weak ≥ {weak_threshold})"
    if missing and verdict == "supported":
        verdict = "weak"
    if missing:
        reason += f"; numbers not in the evidence: {', '.join(missing)}"
    return SupportVerdict(claim, ids, verdict, score, reason, "local", text, missing)


# --- claims about a source in another script -------------------------------------------
#
# A Chinese sentence about an English paper shares only names, terms and numbers with
# it, so lexical overlap calls a faithful translation unsupported. For such pairs the
# multilingual sentence encoder the index uses (packaged, offline) compares the claim
# with each sentence of the evidence. Measured on hand-made zh→en pairs (DPO paper):
# faithful translations 0.47–0.70 cosine, a claim against another sentence of the same
# paper ≤ 0.21, unrelated Chinese sentences ≤ 0.14, a vague claim on the same topic
# 0.32. So 0.2 maps to 0 and 0.6 to 1; the share of the claim's Latin terms and numbers
# found in the evidence (names, model names, figures) counts for 0.3 when it has any.

_LATIN_TERM = re.compile(r"[A-Za-z][A-Za-z0-9\-]{1,}|\d+(?:\.\d+)?%?")


def _cross_script(claim: str, evidence: str) -> bool:
    a, b = cjk_ratio(claim), cjk_ratio(evidence)
    return (a > 0.8 and b < 0.2) or (a < 0.2 and b > 0.8)


_ENCODER: list[Embedder | None] = []


def _encoder() -> Embedder | None:
    """The index's multilingual sentence encoder, loaded once; None without the dense
    extra (the local judge is then lexical only)."""
    if not _ENCODER:
        try:
            from deepfolder.index.embed import Embedder as SentenceEncoder
            from deepfolder.index.embed import EmbedderUnavailable

            encoder = SentenceEncoder()
            encoder.embed(["probe"])
            _ENCODER.append(encoder.embed)
        except (ImportError, EmbedderUnavailable, OSError):
            _ENCODER.append(None)
    return _ENCODER[0]


def crosslingual_score(claim: str, evidence: str) -> tuple[float, str] | None:
    embed = _encoder()
    if embed is None:
        return None
    sentences = [s for s in re.split(r"(?<=[.!?。！？；;])\s*|\n", evidence) if len(s.strip()) > 8]
    vectors = np.asarray(embed([claim, *sentences[:40]]), dtype=float)
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    vectors = vectors / norms[:, None]
    cosine = float((vectors[1:] @ vectors[0]).max()) if len(vectors) > 1 else 0.0
    score = min(1.0, max(0.0, (cosine - 0.2) / 0.4))
    terms = {t.lower() for t in _LATIN_TERM.findall(claim)}
    how = f"cross-lingual: best sentence cosine {cosine:.2f}"
    if terms:
        low = evidence.lower()
        share = sum(1 for t in terms if t in low) / len(terms)
        score = 0.7 * score + 0.3 * share
        how += f", shared terms {share:.2f}"
    return score, how


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["supported", "weak", "unsupported"]},
        "reason": {"type": "string"},
    },
    "required": ["verdict", "reason"],
}


def model_verdict(
    judge: ChatModel,
    claim: str,
    evidence: Sequence[Evidence],
    fallback: SupportVerdict,
) -> SupportVerdict:
    messages = [{"role": "user", "content": judge_prompt(claim, evidence)}]
    try:
        reply = judge.chat(messages, json_schema=JUDGE_SCHEMA, max_tokens=200, temperature=0.0)
        data = _parse_json(reply.content or "")
        verdict = data.get("verdict")
        if verdict not in ("supported", "weak", "unsupported"):
            raise ValueError(f"verdict {verdict!r} is not one of supported/weak/unsupported")
    except (ModelError, ValueError) as exc:
        fallback.reason += f" (model judge failed: {exc}; local verdict kept)"
        return fallback
    return SupportVerdict(
        claim,
        fallback.evidence_ids,
        verdict,
        fallback.score,
        str(data.get("reason", "")),
        "model",
        fallback.evidence_text,
        fallback.missing_numbers,
    )


def _parse_json(content: str) -> dict[str, Any]:
    m = re.search(r"\{.*\}", content, re.DOTALL)
    if not m:
        raise ValueError(f"no JSON object in the judge's reply: {content[:120]!r}")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        raise ValueError(f"the judge's reply is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ValueError("the judge's reply is not a JSON object")
    return data


def use_model_judge(mode: str, judge: ChatModel | None) -> bool:
    """``support_judge`` setting → whether to ask the model: 'model' always (when one is
    given), 'auto' only for remote models (a small local model judges worse than the
    lexical method and costs seconds per claim), 'local' never."""
    if judge is None or mode == "local":
        return False
    return mode == "model" or not judge.is_local


# --- claims ---------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=[.])\s+|\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; the split is after 。！？!?；; and after '. '."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start()
        if end > start:
            spans.append((start, end))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def claim_for(text: str, citation_start: int, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The sentence a citation belongs to. A citation written after the full stop
    (``……增长30%。[E1234abcd]``) belongs to the sentence before it."""
    for k, (s, e) in enumerate(spans):
        if s <= citation_start < e or (citation_start == e and k == len(spans) - 1):
            before = text[s:citation_start]
            if k > 0 and not re.search(r"\w", _strip_refs(before)):
                return spans[k - 1]
            return (s, e)
    return spans[-1] if spans else (0, len(text))


def _strip_refs(text: str) -> str:
    return remove_citations(text)
