"""Retrieval chunks: sentence-aware text spans that keep their exact locator.

Extractors emit one segment per natural unit (a PDF page, a slide, a block of rows, an
article, a document section). ``chunk_segments`` cuts each of those into retrieval-sized
chunks *inside* the unit, so a chunk never spans two pages or two slides and its locator
stays exact. The character span of a chunk (``Locator.char_start``/``char_end``) is
relative to the text of the extractor segment it came from (plus that segment's own
``char_start`` when the extractor set one), so ``page_text[char_start:char_end]`` is the
chunk.

Chunk boundaries prefer sentence ends: Chinese ``。！？；`` and newlines, English ``. ! ?``
followed by whitespace (closing quotes/brackets stay with their sentence). A sentence longer
than 1.5 × ``chunk_chars`` is cut at a soft break (space, comma) or, failing that, hard.
Consecutive chunks share about ``overlap`` characters, starting at a sentence start or a
word start when there is one in the overlap window.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from deepfolder.records import Segment
from deepfolder.settings import IngestSettings, Settings

_CJK_END = re.compile(r"[。！？；\n]+[」』”’）)\"'》]*")
_LATIN_END = re.compile(r"[.!?]+[\"')\]”’]*(?=\s)")
_SOFT_BREAK = re.compile(r"[\s，,、：:]")


def _sentence_cuts(text: str) -> list[int]:
    """Positions just after each sentence end, ascending, without 0 and len(text)."""
    cuts = {m.end() for m in _CJK_END.finditer(text)}
    cuts.update(m.end() for m in _LATIN_END.finditer(text))
    n = len(text)
    return sorted(c for c in cuts if 0 < c < n)


def _soft_cut(text: str, lo: int, hi: int) -> int:
    """The last soft break in ``text[lo:hi]`` (position after it), or ``hi``."""
    best = -1
    for m in _SOFT_BREAK.finditer(text, lo, hi):
        best = m.end()
    return best if best > lo else hi


def chunk_text(text: str, chunk_chars: int = 400, overlap: int = 60) -> list[tuple[int, int, str]]:
    """Split ``text`` into ``(char_start, char_end, chunk)`` spans, in order.

    ``text[char_start:char_end] == chunk`` always holds (surrounding whitespace is left out
    of the span). No chunk is longer than ``1.5 * chunk_chars``.
    """
    if chunk_chars <= 0:
        raise ValueError(f"chunk_chars must be positive, got {chunk_chars}")
    n = len(text)
    overlap = max(0, min(overlap, chunk_chars // 2))
    hard = max(1, int(chunk_chars * 1.5))
    cuts = [*_sentence_cuts(text), n]
    spans: list[tuple[int, int, str]] = []
    pos, prev_end = 0, 0
    while pos < n:
        limit, hard_limit = pos + chunk_chars, pos + hard
        # Only cuts beyond the previous chunk's end: a chunk must bring new text.
        lo_i = bisect.bisect_right(cuts, max(pos, prev_end))
        hi_i = bisect.bisect_right(cuts, limit)
        end = cuts[hi_i - 1] if hi_i > lo_i else -1
        if end == -1 or (end - pos < chunk_chars // 2 and end != n):
            longer = cuts[hi_i] if hi_i < len(cuts) else -1
            if 0 < longer <= hard_limit:
                end = longer
            elif end == -1:
                end = _soft_cut(text, max(pos + chunk_chars // 2, prev_end + 1), min(limit, n))
        end = min(end, n)
        a, b = pos, end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a and (not spans or b > spans[-1][1]):  # skip whitespace-only news
            spans.append((a, b, text[a:b]))
        if end >= n:
            break
        prev_end = end
        pos = _overlap_start(text, cuts, pos, end, overlap)
    return spans


def _overlap_start(text: str, cuts: list[int], pos: int, end: int, overlap: int) -> int:
    """Where the next chunk starts: ``overlap`` characters back from ``end``, snapped
    forward to a sentence start, else a word start, else exact (CJK has no spaces)."""
    if overlap == 0:
        return end
    target = max(pos + 1, end - overlap)
    i = bisect.bisect_left(cuts, target)
    if i < len(cuts) and cuts[i] < end:
        return cuts[i]
    space = text.find(" ", target, end)
    if space != -1 and space + 1 < end:
        return space + 1
    return target


def _ingest_settings(settings: Settings | IngestSettings | None) -> IngestSettings:
    if settings is None:
        return IngestSettings.model_validate({})
    if isinstance(settings, Settings):
        return settings.ingest
    return settings


def chunk_segments(
    segments: Iterable[Segment], settings: Settings | IngestSettings | Any = None
) -> list[Segment]:
    """Turn extractor segments into retrieval chunks.

    Segments are grouped by source and kept in the order given (the extractor's reading
    order); each becomes one or more chunks with the same locator plus ``chunk`` (1-based,
    counted across the whole source) and the character span. ``seq`` is the chunk's
    0-based position in its source. Ids are recomputed from the new locator and text.
    """
    cfg = _ingest_settings(settings)
    by_source: dict[str, list[Segment]] = {}
    for seg in segments:
        by_source.setdefault(seg.source_id, []).append(seg)
    out: list[Segment] = []
    for source_id, segs in by_source.items():
        number = 0
        for seg in segs:
            base = seg.locator.char_start or 0
            for a, b, piece in chunk_text(seg.text, cfg.chunk_chars, cfg.chunk_overlap):
                number += 1
                locator = dataclasses.replace(
                    seg.locator, chunk=number, char_start=base + a, char_end=base + b
                )
                out.append(Segment.create(source_id, piece, locator, seq=number - 1))
    return out
