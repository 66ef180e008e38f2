"""Contracts of the ingest layer: extractors, their results and the ingest report.

An extractor turns one file into sources and segments with exact locators. Extractors
live in a registry keyed by kind; a file whose extractor raises ``ExtractError`` (or
anything else) is recorded in the ingest report with its reason, and ingest goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfolder.records import Segment, Source
from deepfolder.settings import IngestSettings


class ExtractError(Exception):
    """A file could not be read; the message says why and what the user can do."""


class BudgetExceeded(ExtractError):
    """A budget of the whole file (an archive's expanded bytes, entries or nesting) is
    spent: the file fails as a whole instead of being read in part."""


@dataclass(slots=True)
class ArchiveBudget:
    """What a top-level archive may still unpack, counting every nested archive."""

    name: str
    bytes_left: int
    entries_left: int
    max_depth: int

    def take_entry(self) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise BudgetExceeded(
                f"{self.name} holds more members than ingest.archive_max_entries allows "
                "(counting nested archives); raise it to read the archive"
            )

    def take_bytes(self, n: int) -> None:
        self.bytes_left -= n
        if self.bytes_left < 0:
            raise BudgetExceeded(
                f"{self.name} unpacks to more than ingest.archive_max_mb (counting nested "
                "archives); refusing a possible zip bomb — raise the limit to read it"
            )


@dataclass(slots=True)
class ExtractContext:
    rel_path: str
    """The file's path relative to the folder, with '/' separators (the source id)."""
    sha256: str
    size: int
    settings: IngestSettings
    work_dir: Path
    """A scratch directory in the cache for this file (keyframes, unpacked ZIPs).
    Never inside the user's folder."""
    models: dict[str, str] = field(default_factory=dict)
    """Extractors record the local models they used here: name -> version."""
    archive: ArchiveBudget | None = None
    """Inside a ZIP: what is left of the top-level archive's budget (shared by the
    archives nested in it). None outside archives."""
    cache_dir: Path | None = None
    """The deepfolder cache (``settings.cache_path()``): models joined or unpacked at first
    use live under ``<cache_dir>/models``. None: ``$DEEPFOLDER_CACHE`` or
    ``~/.cache/deepfolder``."""


@dataclass(slots=True)
class ExtractResult:
    sources: list[Source]
    segments: list[Segment]
    warnings: list[str] = field(default_factory=list)


Extractor = Callable[[Path, ExtractContext], ExtractResult]


@dataclass(slots=True)
class FileReport:
    path: str
    kind: str
    status: str
    """indexed | cached | failed | skipped (not read on purpose: a symlink out of the
    folder)"""
    reason: str = ""
    segments: int = 0
    seconds: float = 0.0
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "status": self.status,
            "reason": self.reason,
            "segments": self.segments,
            "seconds": round(self.seconds, 3),
            "sha256": self.sha256,
        }


@dataclass(slots=True)
class IngestReport:
    folder: str
    files: list[FileReport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    index_dir: str = ""
    notes: list[str] = field(default_factory=list)
    """What ingest did besides reading files (an index repaired after a crash)."""

    @property
    def failures(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "files": [f.to_dict() for f in self.files],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "models": self.models,
            "index_dir": self.index_dir,
            "notes": self.notes,
        }
