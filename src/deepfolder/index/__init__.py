"""Retrieval: the Index interface and its backends.

``open_index(path, settings)`` is the one entry point the rest of deepfolder uses; the
backend is chosen by ``settings.retrieval.backend`` and nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

from deepfolder.index.base import Index, SearchFilter, SearchMode, SearchOptions
from deepfolder.settings import Settings

__all__ = ["Index", "SearchFilter", "SearchMode", "SearchOptions", "open_index"]


def open_index(path: Path, settings: Settings) -> Index:
    """Open the index stored under ``path`` (created when absent).

    ``embedded``: everything lives in ``path``. ``qdrant``: the data lives in the Qdrant
    server at ``settings.retrieval.backend_url`` (or, with no URL, in Qdrant's local mode
    under ``path``), in collections named after ``path``'s last component. ``milvus``:
    the same with a Milvus server/cluster at ``backend_url`` (or embedded milvus-lite files
    under ``path``).
    """
    retrieval = settings.retrieval
    weights = (retrieval.lexical_weight, retrieval.dense_weight)
    if retrieval.backend == "embedded":
        from deepfolder.index.embedded import EmbeddedIndex

        return EmbeddedIndex(
            Path(path), dense=retrieval.dense, rrf_k=retrieval.rrf_k, weights=weights
        )
    if retrieval.backend in ("qdrant", "milvus"):
        if retrieval.backend == "qdrant":
            from deepfolder.index.qdrant import QdrantIndex as Backend
        else:
            from deepfolder.index.milvus import MilvusIndex as Backend  # type: ignore[assignment]
        return Backend(
            Path(path),
            url=retrieval.backend_url,
            dense=retrieval.dense,
            rrf_k=retrieval.rrf_k,
            weights=weights,
        )
    raise ValueError(
        f"unknown retrieval backend {retrieval.backend!r}; use 'embedded', 'qdrant' or 'milvus'"
    )
