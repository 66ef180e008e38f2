"""A tiny in-memory Index and ToolContext for the image and transcript tool tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from deepfolder.index.base import SearchOptions
from deepfolder.records import Evidence, Segment, Source
from deepfolder.settings import Settings
from deepfolder.tools.base import ToolContext


class ListIndex:
    """Just enough of the Index protocol: sources, segments, get."""

    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._segments: dict[str, Segment] = {}

    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        self._sources.update({s.id: s for s in sources})
        self._segments.update({s.id: s for s in segments})

    def remove_sources(self, source_ids: Iterable[str]) -> None:
        for sid in list(source_ids):
            self._sources.pop(sid, None)

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        return []

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


def make_context(folder: Path, index: ListIndex, index_dir: Path | None = None) -> ToolContext:
    return ToolContext(index=index, settings=Settings(), folder=folder, index_dir=index_dir)
