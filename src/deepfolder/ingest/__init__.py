"""Ingest: turn every file of a folder into sources and located segments, and index them.

``ingest_folder(folder, settings)`` is the entry point; ``chunk_text``/``chunk_segments``
are shared with the media extractors.
"""

from __future__ import annotations

from deepfolder.ingest.base import (
    ExtractContext,
    ExtractError,
    ExtractResult,
    FileReport,
    IngestReport,
)
from deepfolder.ingest.chunk import chunk_segments, chunk_text
from deepfolder.ingest.pipeline import Corpus, index_dir_for, ingest_folder
from deepfolder.ingest.summary import format_ingest_table

__all__ = [
    "Corpus",
    "ExtractContext",
    "ExtractError",
    "ExtractResult",
    "FileReport",
    "IngestReport",
    "chunk_segments",
    "chunk_text",
    "format_ingest_table",
    "index_dir_for",
    "ingest_folder",
]
