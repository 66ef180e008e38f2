from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deepfolder.settings import Settings
from memory_index import MemoryIndexFactory

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("DEEPFOLDER_TEST_DATA", REPO / ".." / "shared" / "data"))
"""The shared test material; ``$DEEPFOLDER_TEST_DATA`` points elsewhere (a worktree)."""


@pytest.fixture
def ingest_settings(tmp_path: Path) -> Settings:
    """Settings with the cache in tmp_path, one worker, no dense embeddings."""
    return Settings.model_validate(
        {
            "cache_dir": str(tmp_path / "cache"),
            "ingest": {"workers": 1},
            "retrieval": {"dense": False},
        }
    )


@pytest.fixture
def memory_index() -> MemoryIndexFactory:
    return MemoryIndexFactory()
