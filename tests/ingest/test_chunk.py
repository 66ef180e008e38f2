from __future__ import annotations

import itertools
import random

import pytest

from deepfolder.ingest.chunk import chunk_segments, chunk_text
from deepfolder.records import EVIDENCE_ID_PATTERN, Locator, Segment
from deepfolder.settings import IngestSettings


def test_spans_match_text_and_respect_size() -> None:
    text = "这是一句中文。" * 80 + "\n" + "This is an English sentence. " * 40
    spans = chunk_text(text, 100, 20)
    assert len(spans) > 5
    for start, end, chunk in spans:
        assert text[start:end] == chunk
        assert len(chunk) <= 150


def test_breaks_at_sentence_ends() -> None:
    text = "".join(f"第{i}句话说明了一个事实。" for i in range(60))
    spans = chunk_text(text, 100, 0)
    assert all(chunk.endswith("。") for _, _, chunk in spans)
    english = " ".join(f"Sentence number {i} states a fact." for i in range(60))
    assert all(c.endswith(".") for _, _, c in chunk_text(english, 120, 0))


def test_overlap_between_consecutive_chunks() -> None:
    text = " ".join(f"Fact {i} is here." for i in range(200))
    spans = chunk_text(text, 200, 60)
    overlaps = [a[1] - b[0] for a, b in itertools.pairwise(spans)]
    assert all(0 < o <= 60 for o in overlaps)


def test_long_sentence_without_breaks_is_cut() -> None:
    text = "字" * 1000
    spans = chunk_text(text, 100, 10)
    assert max(len(c) for *_, c in spans) <= 150
    assert spans[-1][1] == 1000


@pytest.mark.parametrize("seed", range(30))
def test_random_text_is_fully_covered(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(["。", "a", " ", "中", "\n", ". ", "!"]) for _ in range(1500))
    size = rng.randint(20, 300)
    spans = chunk_text(text, size, rng.randint(0, 80))
    covered = [False] * len(text)
    for start, end, chunk in spans:
        assert text[start:end] == chunk and len(chunk) <= 1.5 * size
        covered[start:end] = [True] * (end - start)
    assert all(c or text[i].isspace() for i, c in enumerate(covered))
    assert all(a[1] < b[1] for a, b in itertools.pairwise(spans))


def test_empty_and_whitespace() -> None:
    assert chunk_text("") == []
    assert chunk_text("   \n ") == []


def test_chunk_segments_keeps_locators_and_numbers_chunks() -> None:
    page1 = "First page sentence. " * 40
    page2 = "Second page sentence. " * 40
    segments = [
        Segment.create("a.pdf", page1, Locator(page=1)),
        Segment.create("a.pdf", page2, Locator(page=2), seq=1),
        Segment.create("b.json#3", "文章内容。" * 10, Locator(article=3)),
    ]
    chunks = chunk_segments(segments, IngestSettings(chunk_chars=200, chunk_overlap=30))
    pdf = [c for c in chunks if c.source_id == "a.pdf"]
    assert [c.locator.chunk for c in pdf] == list(range(1, len(pdf) + 1))
    assert [c.seq for c in pdf] == list(range(len(pdf)))
    for chunk in pdf:  # never crosses a page; the span points into that page's text
        page_text = page1 if chunk.locator.page == 1 else page2
        assert page_text[chunk.locator.char_start : chunk.locator.char_end] == chunk.text
        assert ("First" in chunk.text) != ("Second" in chunk.text)
    article = [c for c in chunks if c.source_id == "b.json#3"]
    assert article[0].locator == Locator(article=3, chunk=1, char_start=0, char_end=50)
    assert len({c.id for c in chunks}) == len(chunks)
    import re

    assert all(re.fullmatch(EVIDENCE_ID_PATTERN, c.id) for c in chunks)
