"""The Index interface every retrieval backend implements.

The tools (search, read, list_sources) talk only to this interface, so moving a corpus
from the embedded on-disk index to a distributed engine changes nothing in the tools.

Optional methods ingest calls when a backend has them (the embedded one does):
``flush()`` commits buffered writes (ingest marks files as ingested only after it),
``finish_writes()`` also lets go of a writer lock at the end of an ingest, and
``repair() -> str`` brings the backend's stores back in line after a killed writer
(called under the ingest lock; returns what it did, or '').
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from deepfolder.records import Evidence, Segment, Source

SearchMode = Literal["hybrid", "lexical", "dense"]


@dataclass(frozen=True, slots=True)
class SearchFilter:
    source_ids: tuple[str, ...] = ()
    """Only these sources (exact ids, or a prefix ending in '#' / '/' for a whole
    collection / directory)."""
    kinds: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()
    """Only articles of these collection files (paths relative to the folder)."""


@dataclass(frozen=True, slots=True)
class SearchOptions:
    k: int = 8
    mode: SearchMode = "hybrid"
    filter: SearchFilter = field(default_factory=SearchFilter)
    min_docs: int = 1
    max_per_doc: int = 0
    """0: no limit."""


@runtime_checkable
class Index(Protocol):
    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None: ...

    def remove_sources(self, source_ids: Iterable[str]) -> None: ...

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        """Best segments for ``query``; ``Evidence.score`` is the fused score."""
        ...

    def get(self, evidence_id: str) -> Evidence | None: ...

    def source(self, source_id: str) -> Source | None: ...

    def sources(self) -> list[Source]: ...

    def segments_of(self, source_id: str) -> list[Segment]:
        """All segments of a source in reading order (``seq``)."""
        ...

    def count(self) -> int: ...

    def close(self) -> None: ...
