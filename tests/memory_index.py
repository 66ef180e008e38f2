"""A tiny in-memory Index for tests (substring search, no ranking subtleties)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from deepfolder.index.base import SearchOptions
from deepfolder.records import Evidence, Segment, Source
from deepfolder.settings import Settings


class MemoryIndex:
    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._segments: dict[str, Segment] = {}
        self.added: list[str] = []
        """Source ids in the order add() received them (to see what was re-indexed)."""

    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        for source in sources:
            self._sources[source.id] = source
            self.added.append(source.id)
        for seg in segments:
            assert seg.source_id in self._sources, seg.source_id
            self._segments[seg.id] = seg

    def remove_sources(self, source_ids: Iterable[str]) -> None:
        gone = set(source_ids)
        for sid in gone:
            self._sources.pop(sid, None)
        self._segments = {k: s for k, s in self._segments.items() if s.source_id not in gone}

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        hits = [s for s in self._segments.values() if query in s.text]
        return [Evidence(s, self._sources[s.source_id], 1.0) for s in hits[: options.k]]

    def get(self, evidence_id: str) -> Evidence | None:
        seg = self._segments.get(evidence_id)
        return Evidence(seg, self._sources[seg.source_id]) if seg else None

    def source(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def segments_of(self, source_id: str) -> list[Segment]:
        segs = [s for s in self._segments.values() if s.source_id == source_id]
        return sorted(segs, key=lambda s: s.seq)

    def count(self) -> int:
        return len(self._segments)

    def close(self) -> None:
        pass


class MemoryIndexFactory:
    """Returns the same MemoryIndex for the same path, so re-runs see the earlier index."""

    def __init__(self) -> None:
        self.indexes: dict[Path, MemoryIndex] = {}

    def __call__(self, path: Path, settings: Settings) -> MemoryIndex:
        return self.indexes.setdefault(Path(path), MemoryIndex())
