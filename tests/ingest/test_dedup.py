"""Articles repeated across nested collections are indexed once, every location kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfolder.index.base import SearchOptions
from deepfolder.ingest import ingest_folder
from deepfolder.ingest.dedup import article_key
from deepfolder.settings import Settings
from memory_index import MemoryIndex, MemoryIndexFactory

ARTICLES = [
    {"title": f"第{i}篇", "content": f"文章{i}讲的是话题{chr(0x4E00 + 50 * i)}{i}号。"}
    for i in range(6)
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "case"
    root.mkdir()
    layout = {
        "long_context_sampled_128k.json": ARTICLES,
        "long_context_sampled_32k.json": ARTICLES[:3],
        "long_context_sampled_64k.json": [*ARTICLES[:4], ARTICLES[1]],  # repeats inside too
    }
    for name, articles in layout.items():
        (root / name).write_text(json.dumps(articles, ensure_ascii=False), encoding="utf-8")
    return root


def _check_links(index: MemoryIndex) -> None:
    """Every later copy names a first copy that is indexed with segments, and every first
    copy lists exactly its later copies."""
    for source in index.sources():
        first = source.meta.get("duplicate_of")
        if first is not None:
            assert index.segments_of(source.id) == []
            assert index.segments_of(first), first
            assert source.id in index.source(first).meta["also_at"]  # type: ignore[union-attr]
        for dup in source.meta.get("also_at", []):
            assert index.source(dup).meta["duplicate_of"] == source.id  # type: ignore[union-attr]


def test_each_article_is_indexed_once(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    corpus = ingest_folder(folder, ingest_settings, index_factory=memory_index)  # type: ignore[arg-type]
    index = corpus.index
    assert isinstance(index, MemoryIndex)
    assert index.count() == len(ARTICLES)
    assert len(index.sources()) == 6 + 3 + 5  # every location still resolves
    dup = index.source("long_context_sampled_32k.json#2")
    assert dup is not None and dup.meta["duplicate_of"] == "long_context_sampled_128k.json#2"
    first = index.source("long_context_sampled_128k.json#1")
    assert first is not None
    assert first.meta["also_at"] == [
        "long_context_sampled_32k.json#1",
        "long_context_sampled_64k.json#1",
        "long_context_sampled_64k.json#4",
    ]
    _check_links(index)
    hits = index.search("文章1", SearchOptions(k=10))
    assert [h.source.id for h in hits] == ["long_context_sampled_128k.json#1"]
    status = {f.path: f for f in corpus.report.files}
    assert "3 article(s) already indexed" in status["long_context_sampled_32k.json"].reason
    assert corpus.files["long_context_sampled_32k.json"]["articles"] == 3

    index.added.clear()
    again = ingest_folder(folder, ingest_settings, index_factory=memory_index)  # type: ignore[arg-type]
    assert index.added == [] and again.index.count() == len(ARTICLES)


def test_removing_the_first_copy_promotes_another(
    folder: Path, ingest_settings: Settings, memory_index: MemoryIndexFactory
) -> None:
    ingest_folder(folder, ingest_settings, index_factory=memory_index)  # type: ignore[arg-type]
    (folder / "long_context_sampled_128k.json").unlink()
    corpus = ingest_folder(folder, ingest_settings, index_factory=memory_index)  # type: ignore[arg-type]
    index = corpus.index
    assert isinstance(index, MemoryIndex)
    assert index.count() == 4  # articles 0-3 are still in 32k/64k; 4 and 5 are gone
    assert index.source("long_context_sampled_128k.json#1") is None
    first = index.source("long_context_sampled_32k.json#1")
    assert first is not None and "duplicate_of" not in first.meta
    _check_links(index)
    for i in range(4):
        assert index.search(f"文章{i}", SearchOptions(k=5))

    (folder / "long_context_sampled_32k.json").write_text(
        json.dumps([{"title": "新", "content": "全新的文章。"}], ensure_ascii=False), "utf-8"
    )
    corpus = ingest_folder(folder, ingest_settings, index_factory=memory_index)  # type: ignore[arg-type]
    assert isinstance(corpus.index, MemoryIndex)
    _check_links(corpus.index)
    assert corpus.index.count() == 5
    for i in range(4):
        assert corpus.index.search(f"文章{i}", SearchOptions(k=5))


def test_the_embedded_index_reads_a_copy_through_its_first(
    folder: Path, ingest_settings: Settings
) -> None:
    corpus = ingest_folder(folder, ingest_settings)
    try:
        index = corpus.index
        assert index.count() == len(ARTICLES)
        first = index.segments_of("long_context_sampled_128k.json#2")
        assert first and index.segments_of("long_context_sampled_32k.json#2") == first
        hits = index.search("文章2 话题", SearchOptions(k=10, mode="lexical", max_per_doc=1))
        ids = [h.source.id for h in hits]
        assert len(ids) == len(set(ids)) and len({h.segment.text for h in hits}) == len(hits)
    finally:
        corpus.close()


@pytest.mark.data
def test_case_002_collections(tmp_path: Path, ingest_settings: Settings) -> None:
    """The benchmark's nested samples: every article is indexed once, every article
    location resolves (the collections are linked in, so the folder holds links only)."""
    from conftest import DATA

    case = DATA / "cases" / "002"
    if not case.exists():
        pytest.skip(f"{case} is absent")
    folder = tmp_path / "case"
    folder.mkdir()
    for path in sorted(case.glob("long_context*.json")):
        (folder / path.name).symlink_to(path)
    settings = ingest_settings.model_copy(
        update={
            "ingest": ingest_settings.ingest.model_copy(update={"follow_external_symlinks": True})
        }
    )
    factory = MemoryIndexFactory()
    corpus = ingest_folder(folder, settings, index_factory=factory)  # type: ignore[arg-type]
    index = corpus.index
    assert isinstance(index, MemoryIndex)
    keys = [
        article_key(source, index.segments_of(source.id))
        for source in index.sources()
        if "duplicate_of" not in source.meta and index.segments_of(source.id)
    ]
    assert len(keys) == len(set(keys))  # no article's text indexed twice
    copies = [s for s in index.sources() if "duplicate_of" in s.meta]
    assert copies and len({s.path for s in index.sources()}) == 4
    _check_links(index)
