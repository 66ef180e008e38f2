"""search_one / search_many across languages: translations as weighted phrasings, and the
dense side's other-script hits fused into the pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.index.base import SearchOptions
from deepfolder.index.embed import Embedder
from deepfolder.index.embedded import EmbeddedIndex
from deepfolder.index.query import search_many, search_one
from deepfolder.index.rerank import configured_reranker
from deepfolder.index.translate import translate_queries
from deepfolder.llm.fake import ScriptedModel
from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.settings import RetrievalSettings


@dataclass
class _ModeIndex:
    """Stand-in returning a fixed list per (query, mode); records the calls."""

    answers: dict[tuple[str, str], list[Evidence]]
    calls: list[tuple[str, str]] = field(default_factory=list)

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        self.calls.append((query, options.mode))
        return self.answers.get((query, options.mode), [])[: options.k]


def _ev(text: str, src: str) -> Evidence:
    return Evidence(Segment.create(src, text, Locator(), 0), Source(src, src, "text"), 1.0)


ZH = [_ev(f"中文网页第{i}段，讲别的事情。", f"web{i}") for i in range(3)]
EN = [_ev(f"The DPO loss, part {i}.", "dpo.pdf") for i in range(2)]


def test_translations_are_searched_and_fused_with_their_weight() -> None:
    """At equal weight the original query's (other-language) hits tie with the
    translation's and come first; the default weight 2 puts the translation's first."""
    index: Any = _ModeIndex({("损失函数", "hybrid"): ZH, ("DPO loss", "hybrid"): EN})
    options = SearchOptions(k=3)
    equal = search_many(
        index,
        ["损失函数"],
        options,
        translations=["DPO loss", " ", "损失函数"],
        translation_weight=1.0,
    )
    assert index.calls == [("损失函数", "hybrid"), ("DPO loss", "hybrid")]
    assert [e.id for e in equal] == [ZH[0].id, EN[0].id, ZH[1].id]  # ties: the original first
    heavier = search_many(
        index,
        ["损失函数"],
        options,
        translations=["DPO loss"],
    )
    assert [e.id for e in heavier][:2] == [EN[0].id, EN[1].id]
    # a translation alone is searched like a query
    only = search_many(index, [" "], options, translations=["DPO loss"])
    assert [e.id for e in only] == [e.id for e in EN]


def test_cross_script_dense_hits_join_the_pool() -> None:
    """A Chinese query's English dense hits enter the hybrid pool with the given weight;
    its Chinese dense hits do not (they are in the hybrid ranking already)."""
    dense_zh = _ev("中文的稠密结果", "web9")
    index: Any = _ModeIndex(
        {("损失函数", "hybrid"): ZH, ("损失函数", "dense"): [dense_zh, EN[1], EN[0]]}
    )
    options = SearchOptions(k=4)
    plain = search_one(index, "损失函数", options)
    assert [e.id for e in plain] == [e.id for e in ZH] and index.calls == [("损失函数", "hybrid")]
    boosted = search_one(index, "损失函数", options, cross_script_weight=2.0)
    assert index.calls[-1] == ("损失函数", "dense")
    assert [e.id for e in boosted] == [EN[1].id, EN[0].id, ZH[0].id, ZH[1].id]
    assert dense_zh.id not in {e.id for e in boosted}
    assert boosted[0].score > boosted[2].score
    # lexical and dense modes are left as asked
    lexical = SearchOptions(k=4, mode="lexical")
    assert search_one(index, "损失函数", lexical, cross_script_weight=2.0) == []
    assert index.calls[-1] == ("损失函数", "lexical")


def test_cross_script_weight_passes_through_search_many() -> None:
    index: Any = _ModeIndex({("损失函数", "hybrid"): ZH[:1], ("损失函数", "dense"): EN[:1]})
    results = search_many(index, ["损失函数"], SearchOptions(k=2), cross_script_weight=1.0)
    assert {e.id for e in results} == {ZH[0].id, EN[0].id}


def test_a_chinese_question_finds_the_english_page_through_its_translation(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Real index, embedder and configured reranker; the translation comes from a fake
    model through translate_queries, as the pipeline will call it."""
    paper = Source("paper.pdf", "paper.pdf", "pdf", title="Preference optimization")
    web = [Source(f"web.json#{i}", "web.json", "article", article=i) for i in range(3)]
    pages = [
        "The Bradley-Terry model gives the probability that one answer is preferred over "
        "another from the difference of their rewards.",
        "We train the policy with a binary cross-entropy loss on preference pairs.",
        "Experiments use the IMDb dataset for controlled sentiment generation.",
    ]
    articles = [
        "两个回答哪个更好？偏好的概率在心理学中由很多因素决定，奖励会改变人的选择。",
        "损失函数衡量预测误差，常见的有均方误差和交叉熵，差值越小越好。",
        "消费者的偏好与商品价格之间的差值关系，经济学用效用函数描述。",
    ]
    segments = [
        Segment.create(paper.id, text, Locator(page=i + 1), i) for i, text in enumerate(pages)
    ] + [
        Segment.create(s.id, text, Locator(article=s.article, chunk=1), 0)
        for s, text in zip(web, articles, strict=True)
    ]
    index = EmbeddedIndex(tmp_path / "idx", embedder=embedder)
    index.add([paper, *web], segments)
    query = "两个回答之间的偏好概率如何由奖励差值给出"
    model = ScriptedModel(
        ['{"translations": ["how the preference probability of two answers follows from '
         'their reward difference"]}']
    )  # fmt: skip
    options = SearchOptions(k=3)
    reranker = configured_reranker(RetrievalSettings())
    before = search_many(index, [query], options, reranker=reranker)
    assert before[0].source.id.startswith("web.json")  # the Chinese pages win today
    translations = translate_queries(model, [query], "en")
    after = search_many(index, [query], options, reranker=reranker, translations=translations)
    assert after[0].id == segments[0].id
    index.close()
