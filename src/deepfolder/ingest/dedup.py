"""One article, indexed once, wherever it appears.

The benchmark layout ships nested samples (``long_context_sampled_32k/64k/128k.json``,
the smaller inside the larger), so the same web page used to be indexed up to four times
and crowded the search results. An article is identified by the hash of its title and
chunk texts. The first copy met (in scan order) is indexed as usual and lists the other
locations in ``meta["also_at"]``; every later copy keeps its own ``Source`` record (so
``<collection>#<i>`` still resolves for citations and ``read``, and collections keep their
article counts) with ``meta["duplicate_of"]`` naming the first copy, and no segments of
its own (``EmbeddedIndex.segments_of`` follows ``duplicate_of``).

The manifest remembers, per file, the article hashes it owns (``articles``) and the
copies it defers to other files (``duplicates``: source id → first copy), so when the
file holding a first copy changes or disappears, the files deferring to it are indexed
again (from the extraction cache) and one of them becomes the first copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from deepfolder.records import Segment, Source

if TYPE_CHECKING:
    from deepfolder.index.base import Index

DUPLICATE_OF = "duplicate_of"
ALSO_AT = "also_at"


def article_key(source: Source, segments: Iterable[Segment]) -> str:
    digest = hashlib.sha256(source.title.strip().encode("utf-8"))
    for seg in segments:
        digest.update(b"\0" + seg.text.encode("utf-8"))
    return digest.hexdigest()[:20]


@dataclasses.dataclass(slots=True)
class Deduplicated:
    sources: list[Source]
    segments: list[Segment]
    articles: dict[str, str]
    """Hash → source id of the first copies this file holds."""
    duplicates: dict[str, str]
    """Source id of each later copy in this file → its first copy."""
    others: list[Source]
    """First copies in other files whose ``also_at`` gained locations (to re-store)."""


def _with_locations(source: Source, add: Iterable[str] = (), drop: Iterable[str] = ()) -> Source:
    gone = set(drop)
    places = [p for p in source.meta.get(ALSO_AT, []) if p not in gone]
    places += [p for p in add if p not in places]
    meta = {k: v for k, v in source.meta.items() if k != ALSO_AT}
    if places:
        meta[ALSO_AT] = places
    return dataclasses.replace(source, meta=meta)


class ArticleRegistry:
    """Which source holds the first copy of each article in the index."""

    def __init__(self, manifest: dict[str, dict[str, Any]]) -> None:
        self.first: dict[str, str] = {}
        for entry in manifest.values():
            self.first.update(entry.get("articles", {}))

    def forget(self, entry: dict[str, Any], index: Index) -> None:
        """A file's sources left the index: its first copies are no longer known, and its
        later copies are struck from their first copies' ``also_at``."""
        for key in entry.get("articles", {}):
            self.first.pop(key, None)
        by_first: dict[str, list[str]] = {}
        for dup, first in entry.get("duplicates", {}).items():
            by_first.setdefault(first, []).append(dup)
        updated = []
        for first, dups in by_first.items():
            source = index.source(first)
            if source is not None and source.id == first:
                updated.append(_with_locations(source, drop=dups))
        if updated:
            index.add(updated, [])

    def dedupe(self, sources: list[Source], segments: list[Segment], index: Index) -> Deduplicated:
        """Split one file's extraction into first copies and later copies."""
        by_source: dict[str, list[Segment]] = {}
        for seg in segments:
            by_source.setdefault(seg.source_id, []).append(seg)
        articles: dict[str, str] = {}
        duplicates: dict[str, str] = {}
        for source in sources:
            segs = by_source.get(source.id)
            if source.kind != "article" or not segs:
                continue
            key = article_key(source, segs)
            first = self.first.get(key)
            if first is None:
                self.first[key] = articles[key] = source.id
            elif first != source.id:
                duplicates[source.id] = first
        if not duplicates:
            return Deduplicated(sources, segments, articles, {}, [])
        locations: dict[str, list[str]] = {}
        for dup, first in duplicates.items():
            locations.setdefault(first, []).append(dup)
        kept: list[Source] = []
        for source in sources:
            if source.id in duplicates:
                meta = {**source.meta, DUPLICATE_OF: duplicates[source.id]}
                source = dataclasses.replace(source, meta=meta)
            elif source.id in locations:
                source = _with_locations(source, add=locations.pop(source.id))
            kept.append(source)
        others = []
        for first, dups in locations.items():  # first copies held by other files
            held = index.source(first)
            if held is not None:
                others.append(_with_locations(held, add=dups))
        kept_segments = [s for s in segments if s.source_id not in duplicates]
        return Deduplicated(kept, kept_segments, articles, duplicates, others)
