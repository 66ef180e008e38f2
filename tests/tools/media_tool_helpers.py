"""A ToolContext over the shared in-memory test index, for the image and transcript tool tests."""

from __future__ import annotations

from pathlib import Path

from deepfolder.settings import Settings
from deepfolder.tools.base import ToolContext
from memory_index import MemoryIndex


def make_context(folder: Path, index: MemoryIndex, index_dir: Path | None = None) -> ToolContext:
    return ToolContext(index=index, settings=Settings(), folder=folder, index_dir=index_dir)
