"""One contract every Index backend must pass: embedded (tantivy + vectors on disk),
qdrant (qdrant-client; here in its local mode, the same client calls as a server) and
milvus (pymilvus; ``milvus``: embedded milvus-lite files, ``milvus-server``: a real
``milvus-lite server`` gRPC process started for the session, see conftest.py).

Set ``DEEPFOLDER_TEST_QDRANT_URL=http://host:6333`` to run the suite against a real Qdrant
server as well (``qdrant-server`` parameter; skipped otherwise)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from deepfolder.index import open_index
from deepfolder.index.base import Index, SearchFilter, SearchOptions
from deepfolder.index.embed import Embedder
from deepfolder.index.embedded import EmbeddedIndex
from deepfolder.index.milvus import MilvusIndex
from deepfolder.index.qdrant import QdrantIndex
from deepfolder.index.query import search_one
from deepfolder.index.rerank import CoverageReranker
from deepfolder.records import Locator, Segment, Source
from deepfolder.settings import Settings
from index.milvus_server import HAS_MILVUS, MILVUS_SKIP

SOURCES = [
    Source("docs/climate.pdf", "docs/climate.pdf", "pdf", title="Climate report"),
    Source("docs/budget.xlsx", "docs/budget.xlsx", "sheet"),
    Source("news/a.json#0", "news/a.json", "article", title="北京大学", article=0),
    Source("news/a.json#1", "news/a.json", "article", title="海平面", article=1),
    Source("news/b.json#0", "news/b.json", "article", title="熊猫", article=0),
    Source("notes.md", "notes.md", "markdown"),
]
TEXTS = {
    "docs/climate.pdf": [
        "Rising sea levels threaten coastal cities such as Shanghai and Miami.",
        "Glaciers in Greenland are melting faster than predicted by earlier models.",
        "Sea level rise of one metre would displace millions of people in coastal Asia.",
        "Adaptation options include sea walls, managed retreat and wetland restoration.",
    ],
    "docs/budget.xlsx": ["Quarterly budget: revenue 1200, expenses 900, profit 300 dollars."],
    "news/a.json#0": ["北京大学创办于1898年，是中国近代第一所国立综合性大学，位于北京市海淀区。"],
    "news/a.json#1": ["全球变暖导致海平面上升，上海等沿海城市面临洪水威胁。"],
    "news/b.json#0": ["大熊猫主要以竹子为食，栖息在四川的高山竹林中。"],
    "notes.md": ["Meeting notes: the team agreed to ship version two in March."],
}


def _segments() -> list[Segment]:
    out = []
    for source in SOURCES:
        for seq, text in enumerate(TEXTS[source.id]):
            loc = (
                Locator(article=source.article, chunk=seq + 1)
                if source.article is not None
                else Locator(page=seq + 1)
            )
            out.append(Segment.create(source.id, text, loc, seq))
    return out


Factory = Callable[[Path], Index]
QDRANT_URL = os.environ.get("DEEPFOLDER_TEST_QDRANT_URL")


def _server_path(p: Path) -> Path:
    """A collection name unique to this test's tmp path (the server outlives the test)."""
    return Path(f"{p.name}-{hashlib.sha1(str(p).encode()).hexdigest()[:10]}")


def _factories(embedder: Embedder | None, milvus_url: str | None) -> dict[str, Factory]:
    dense = embedder is not None
    return {
        "embedded": lambda p: EmbeddedIndex(p, dense=dense, embedder=embedder),
        "qdrant": lambda p: QdrantIndex(p, dense=dense, embedder=embedder),
        "qdrant-server": lambda p: QdrantIndex(
            _server_path(p), url=QDRANT_URL, dense=dense, embedder=embedder
        ),
        "milvus": lambda p: MilvusIndex(p, dense=dense, embedder=embedder),
        "milvus-server": lambda p: MilvusIndex(
            _server_path(p), url=milvus_url, dense=dense, embedder=embedder
        ),
    }


def _skip_unavailable(backend: str) -> None:
    if backend == "qdrant-server" and not QDRANT_URL:
        pytest.skip("set DEEPFOLDER_TEST_QDRANT_URL to test against a Qdrant server")
    if backend.startswith("milvus") and not HAS_MILVUS:
        pytest.skip(MILVUS_SKIP)


def _milvus_url(request: pytest.FixtureRequest, backend: str) -> str | None:
    """The session's milvus-lite server, started only when a test needs it."""
    return request.getfixturevalue("milvus_server_url") if backend == "milvus-server" else None


@pytest.fixture(params=["embedded", "qdrant", "qdrant-server", "milvus", "milvus-server"])
def make_index(request: pytest.FixtureRequest, embedder: Embedder) -> Factory:
    _skip_unavailable(request.param)
    return _factories(embedder, _milvus_url(request, request.param))[request.param]


@pytest.fixture
def index(make_index: Factory, tmp_path: Path):
    idx = make_index(tmp_path / "idx")
    idx.add(SOURCES, list(reversed(_segments())))
    yield idx
    idx.close()


def _ids(results) -> list[str]:
    return [e.source.id for e in results]


class TestContract:
    def test_counts_sources_and_get(self, index: Index) -> None:
        assert index.count() == len(_segments())
        assert {s.id for s in index.sources()} == {s.id for s in SOURCES}
        assert index.source("news/a.json#0") == SOURCES[2]
        assert index.source("missing") is None
        seg = _segments()[0]
        ev = index.get(seg.id)
        assert ev is not None and ev.segment == seg and ev.source == SOURCES[0]
        assert index.get("E00000000") is None

    def test_segments_of_in_reading_order(self, index: Index) -> None:
        segs = index.segments_of("docs/climate.pdf")
        assert [s.seq for s in segs] == [0, 1, 2, 3]
        assert segs[0].text.startswith("Rising sea levels")
        assert index.segments_of("nothing") == []

    @pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
    def test_chinese_query(self, index: Index, mode: str) -> None:
        results = index.search("北京大学是哪一年创办的", SearchOptions(k=3, mode=mode))
        assert _ids(results)[0] == "news/a.json#0"
        assert results[0].score > 0

    @pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
    def test_english_query(self, index: Index, mode: str) -> None:
        results = index.search("quarterly budget profit", SearchOptions(k=3, mode=mode))
        assert _ids(results)[0] == "docs/budget.xlsx"

    def test_cross_lingual_dense(self, index: Index) -> None:
        results = index.search("giant pandas eat bamboo", SearchOptions(k=2, mode="dense"))
        assert _ids(results)[0] == "news/b.json#0"
        lexical = index.search("giant pandas eat bamboo", SearchOptions(k=2, mode="lexical"))
        assert "news/b.json#0" not in _ids(lexical)

    def test_reranked_search(self, index: Index) -> None:
        """The search tool's path (a pool, the coverage reranker, then diversity) works on
        every backend's results."""
        options = SearchOptions(k=3, max_per_doc=1)
        results = search_one(index, "北京大学是哪一年创办的", options, CoverageReranker())
        assert _ids(results)[0] == "news/a.json#0"
        assert len(set(_ids(results))) == len(results)

    def test_empty_query(self, index: Index) -> None:
        assert index.search("  ，。 ", SearchOptions(mode="lexical")) == []

    @pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
    def test_filters(self, index: Index, mode: str) -> None:
        def run(flt: SearchFilter) -> list[str]:
            return _ids(
                index.search("sea level 海平面 城市", SearchOptions(k=10, mode=mode, filter=flt))
            )

        assert set(run(SearchFilter(kinds=("article",)))) <= {
            "news/a.json#0",
            "news/a.json#1",
            "news/b.json#0",
        }
        assert "news/a.json#1" in run(SearchFilter(kinds=("article",)))
        assert set(run(SearchFilter(collections=("news/a.json",)))) <= {
            "news/a.json#0",
            "news/a.json#1",
        }
        assert set(run(SearchFilter(source_ids=("news/a.json#",)))) <= {
            "news/a.json#0",
            "news/a.json#1",
        }
        docs = run(SearchFilter(source_ids=("docs/",)))
        assert docs and set(docs) <= {"docs/climate.pdf", "docs/budget.xlsx"}
        exact = run(SearchFilter(source_ids=("news/a.json#1", "notes.md")))
        assert "news/a.json#1" in exact and set(exact) <= {"news/a.json#1", "notes.md"}
        assert run(SearchFilter(kinds=("video",))) == []

    def test_diversity(self, index: Index) -> None:
        query = "sea level rise coastal cities"
        plain = index.search(query, SearchOptions(k=4, mode="lexical"))
        assert _ids(plain).count("docs/climate.pdf") >= 3
        capped = index.search(query, SearchOptions(k=4, mode="hybrid", max_per_doc=1))
        assert len(set(_ids(capped))) == len(capped)
        spread = index.search(query, SearchOptions(k=4, mode="hybrid", min_docs=3))
        assert len(spread) == 4 and len(set(_ids(spread))) >= 3
        assert _ids(spread)[0] == "docs/climate.pdf"

    def test_remove_sources(self, index: Index) -> None:
        index.remove_sources(["news/a.json#0", "not-there"])
        assert index.count() == len(_segments()) - 1
        assert index.source("news/a.json#0") is None
        assert (
            index.get(_segments()[5].id) is None
            or index.get(_segments()[5].id).source.id != "news/a.json#0"
        )
        for mode in ("lexical", "dense", "hybrid"):
            found = index.search("北京大学", SearchOptions(k=10, mode=mode))
            assert "news/a.json#0" not in _ids(found)

    def test_readd_replaces(self, index: Index) -> None:
        index.add(SOURCES[:1], _segments()[:2])
        assert index.count() == len(_segments())
        results = index.search("Greenland glaciers", SearchOptions(k=10, mode="hybrid"))
        assert [e.id for e in results].count(_segments()[1].id) == 1

    def test_add_requires_sources(self, index: Index) -> None:
        orphan = Segment.create("ghost.txt", "boo", Locator(), 0)
        with pytest.raises(ValueError, match=r"ghost\.txt"):
            index.add([], [orphan])

    def test_reopen(self, make_index: Factory, tmp_path: Path) -> None:
        idx = make_index(tmp_path / "re")
        idx.add(SOURCES, _segments())
        idx.close()
        again = make_index(tmp_path / "re")
        try:
            assert again.count() == len(_segments())
            assert _ids(again.search("熊猫 竹子", SearchOptions(k=1)))[0] == "news/b.json#0"
            assert again.get(_segments()[0].id) is not None
            assert len(again.sources()) == len(SOURCES)
        finally:
            again.close()


BACKENDS = ["embedded", "qdrant", "milvus", "milvus-server"]


def _open(request: pytest.FixtureRequest, backend: str, path: Path) -> Index:
    """``open_index`` with ``retrieval.dense = False`` for a backend name of the contract."""
    _skip_unavailable(backend)
    url = _milvus_url(request, backend)
    name = backend.removesuffix("-server")
    settings = Settings.model_validate(
        {"retrieval": {"backend": name, "dense": False, "backend_url": url}}
    )
    return open_index(_server_path(path) if url else path, settings)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lexical_only_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """retrieval.dense = False: no embedder is loaded, every mode answers lexically."""
    idx = _open(request, backend, tmp_path / "lex")
    try:
        idx.add(SOURCES, _segments())
        for mode in ("lexical", "dense", "hybrid"):
            results = idx.search("大熊猫 竹子", SearchOptions(k=2, mode=mode))
            assert _ids(results)[0] == "news/b.json#0"
    finally:
        idx.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_title_makes_middle_chunks_findable(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A chunk that never names its subject is still found through the source's title."""
    bio = Source("bios.json#0", "bios.json", "article", title="罗保铭", article=0)
    other = Source("bios.json#1", "bios.json", "article", title="王小明", article=1)
    segs = [
        Segment.create(bio.id, "罗保铭，天津人，1969年参加工作。", Locator(chunk=1), 0),
        Segment.create(bio.id, "1992年4月，任大港区委副书记。", Locator(chunk=2), 1),
        Segment.create(other.id, "1992年4月，任某公司副经理。", Locator(chunk=1), 0),
    ]
    idx = _open(request, backend, tmp_path / "t")
    try:
        idx.add([bio, other], segs)
        top = idx.search("1992年4月，罗保铭担任什么职务？", SearchOptions(k=1, mode="lexical"))
        assert top[0].id == segs[1].id
        assert top[0].segment.text == segs[1].text  # stored text is not changed
    finally:
        idx.close()
