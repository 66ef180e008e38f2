"""Helpers shared by the analysis tests (imported by module name: pytest puts this
directory on sys.path because tests/analysis has no __init__.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from deepfolder.records import Evidence, Segment, Source

SALES_CSV = (
    "month,region,sales\n2024-01,华东,120\n2024-02,华东,135\n2024-01,华南,90\n2024-02,华南,101\n"
)


def folder_digest(folder: Path) -> str:
    """Hash of every file's path and bytes: equal before and after means untouched."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


class EmptyIndex:
    """The part of the Index protocol the analysis tool touches (status line, resolve)."""

    def sources(self) -> list[Source]:
        return []

    def get(self, evidence_id: str) -> Evidence | None:
        return None

    def segments_of(self, source_id: str) -> list[Segment]:
        return []

    def count(self) -> int:
        return 0
