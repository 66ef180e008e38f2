"""The search tool over a real (lexical) embedded index: reranking, several phrasings."""

from __future__ import annotations

from pathlib import Path

from deepfolder.index import open_index
from deepfolder.records import Locator, Segment, Source
from deepfolder.settings import Settings
from deepfolder.tools.base import ToolContext
from deepfolder.tools.search import search

BIO = Source("bios.json#0", "bios.json", "article", title="罗保铭", article=0)
OTHER = Source("notes.md", "notes.md", "markdown", title="notes")
NEWS = Source("news.json#0", "news.json", "article", title="大港新闻", article=0)
SEGMENTS = [
    Segment.create(
        BIO.id,
        "罗保铭，天津人。罗保铭的职务很多，罗保铭的职务变动频繁。",
        Locator(article=0, chunk=1),
        0,
    ),
    Segment.create(BIO.id, "1992年4月，担任大港区委副书记。", Locator(article=0, chunk=2), 1),
    Segment.create(OTHER.id, "Glaciers in Greenland melt faster than predicted.", Locator(), 0),
    Segment.create(NEWS.id, "1992年4月，大港新建一座码头。", Locator(article=0, chunk=1), 0),
]
QUERY = "1992年4月罗保铭担任什么职务"


def _context(tmp_path: Path, rerank: str) -> ToolContext:
    settings = Settings.model_validate(
        {"retrieval": {"dense": False, "rerank": rerank, "min_docs": 1}}
    )
    index = open_index(tmp_path / f"idx-{rerank}", settings)
    index.add([BIO, OTHER, NEWS], SEGMENTS)
    return ToolContext(index=index, settings=settings, folder=tmp_path)


def test_search_applies_the_configured_reranker(tmp_path: Path) -> None:
    """BM25 ranks the other article's "1992年4月" chunk second; coverage of the query's
    characters and pairs ranks the subject's own chunk (罗保铭…职务) above it."""
    plain = _context(tmp_path, "none")
    reranked = _context(tmp_path, "coverage")
    try:
        before = search(plain, {"query": QUERY, "k": 3})
        after = search(reranked, {"query": QUERY, "k": 3})
    finally:
        plain.index.close()
        reranked.index.close()
    bio, fact, news = SEGMENTS[0].id, SEGMENTS[1].id, SEGMENTS[3].id
    assert [e.id for e in before.evidence] == [fact, news, bio]
    assert [e.id for e in after.evidence] == [fact, bio, news]
    assert after.text.index(bio) < after.text.index(news)
    assert set(reranked.seen) == {fact, bio, news}


def test_more_queries_are_merged_without_duplicates(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "coverage")
    try:
        out = search(ctx, {"query": "罗保铭", "more_queries": ["Greenland glaciers", "罗保铭"]})
    finally:
        ctx.index.close()
    ids = [e.id for e in out.evidence]
    assert len(ids) == len(set(ids)) == 3
    assert SEGMENTS[2].id in ids
    assert out.text.rstrip().splitlines()[-1] == ctx.status_line()


def test_budget_is_counted_in_model_tokens(tmp_path: Path) -> None:
    """Eight long Chinese hits fit the default budget (about 1.5 characters per token,
    as Qwen/GPT tokenizers cut Chinese); a small budget cuts the list and says so."""
    src = Source("long.json#0", "long.json", "article", title="长文", article=0)
    segments = [
        Segment.create(
            src.id,
            f"第{i}段：" + "图书馆数字化服务的调研结果显示读者满意。" * 16,
            Locator(chunk=i + 1),
            i,
        )
        for i in range(8)
    ]

    def shown(budget: int) -> str:
        settings = Settings.model_validate(
            {
                "retrieval": {
                    "dense": False,
                    "min_docs": 1,
                    "max_per_doc": 8,
                    "result_token_budget": budget,
                }
            }
        )
        index = open_index(tmp_path / f"idx-{budget}", settings)
        index.add([src], segments)
        try:
            out = search(
                ToolContext(index=index, settings=settings, folder=tmp_path),
                {"query": "图书馆数字化", "k": 8},
            )
        finally:
            index.close()
        return out.text

    full = shown(1500)
    assert all(seg.id in full for seg in segments) and "cut to fit" not in full
    small = shown(400)
    assert "more results cut to fit the budget" in small
    assert sum(seg.id in small for seg in segments) < 8
