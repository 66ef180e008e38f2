"""The embedded index after a writer killed half-way: ``repair()`` makes its three stores
(SQLite records, tantivy lexical index, vector files) agree again."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import deepfolder
from deepfolder.index.base import SearchOptions
from deepfolder.index.embedded import EmbeddedIndex
from deepfolder.records import Locator, Segment, Source

LEXICAL = SearchOptions(k=5, mode="lexical")


class HashEmbedder:
    """Deterministic 16-dimensional vectors from character hashes (no model)."""

    name = "test-hash"
    version = "1"
    dim = 16

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text:
                out[row, hashlib.sha1(ch.encode()).digest()[0] % self.dim] += 1.0
            out[row] /= max(1e-9, float(np.linalg.norm(out[row])))
        return out


def _records(words: list[str]) -> tuple[list[Source], list[Segment]]:
    sources = [Source(f"{w}.txt", f"{w}.txt", "text") for w in words]
    segments = [
        Segment.create(f"{w}.txt", f"this note is about {w}", Locator(chunk=1), 0) for w in words
    ]
    return sources, segments


def _killed_writer(path: Path, body: str) -> None:
    """Run ``body`` against ``index`` (an EmbeddedIndex at path) in a child, then SIGKILL
    it before anything is closed."""
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from deepfolder.index.embedded import EmbeddedIndex
        from deepfolder.records import Locator, Segment, Source
        index = EmbeddedIndex(Path({str(path)!r}), dense=False)
        sources = [Source(w + ".txt", w + ".txt", "text") for w in ("alpha", "bravo")]
        segs = [Segment.create(s.id, "this note is about " + s.id[:-4], Locator(chunk=1), 0)
                for s in sources]
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(deepfolder.__file__).parents[1]))
    script = code + textwrap.dedent(body) + "\nos.kill(os.getpid(), signal.SIGKILL)\n"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()


def test_lexical_index_rebuilt_when_a_writer_died_before_committing(tmp_path: Path) -> None:
    _killed_writer(tmp_path, "index.add(sources, segs)\n")
    index = EmbeddedIndex(tmp_path, dense=False)
    try:
        assert index.count() == 2 and index.search("bravo", LEXICAL) == []
        note = index.repair()
        assert "rebuilt the lexical index (0 documents for 2 stored passages" in note
        assert [e.source.id for e in index.search("bravo", LEXICAL)] == ["bravo.txt"]
        assert index.repair() == ""  # consistent now
    finally:
        index.close()


def test_lexical_leftovers_of_an_interrupted_removal_are_dropped(tmp_path: Path) -> None:
    body = "index.add(sources, segs)\nindex.flush()\nindex.remove_sources(['alpha.txt'])\n"
    _killed_writer(tmp_path, body)
    index = EmbeddedIndex(tmp_path, dense=False)
    try:
        assert index.count() == 1
        assert index.lexical_candidates("alpha", SearchOptions().filter, 5)  # a leftover
        assert "(2 documents for 1 stored passages" in index.repair()
        assert index.lexical_candidates("alpha", SearchOptions().filter, 5) == []
        assert [e.source.id for e in index.search("bravo", LEXICAL)] == ["bravo.txt"]
    finally:
        index.close()


def test_vector_rows_of_an_uncommitted_add_are_cut(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    index = EmbeddedIndex(tmp_path, embedder=embedder)  # type: ignore[arg-type]
    index.add(*_records(["alpha", "bravo"]))
    index.close()
    # A killed add(): three and a half vectors and three owner rows written, no commit.
    with open(tmp_path / "vectors.f32", "ab") as fh:
        fh.write(b"\x01" * (4 * 16 * 3 + 32))
    with open(tmp_path / "rows.i32", "ab") as fh:
        fh.write(np.zeros(3, dtype=np.int32).tobytes())

    index = EmbeddedIndex(tmp_path, embedder=embedder)  # type: ignore[arg-type]
    try:
        assert "dropped 3 vector row(s)" in index.repair()
        assert (tmp_path / "rows.i32").stat().st_size == 2 * 4
        assert (tmp_path / "vectors.f32").stat().st_size == 2 * 4 * 16
        index.add(*_records(["charlie"]))  # appended rows line up with their segments
        dense = SearchOptions(k=1, mode="dense")
        for word in ("alpha", "bravo", "charlie"):
            hits = index.search(f"this note is about {word}", dense)
            assert [h.source.id for h in hits] == [f"{word}.txt"]
    finally:
        index.close()


def test_passages_of_missing_sources_are_dropped(tmp_path: Path) -> None:
    index = EmbeddedIndex(tmp_path, dense=False)
    try:
        index.add(*_records(["alpha"]))
        orphan = Segment.create("gone.txt", "left behind", Locator(chunk=1), 0)
        index._db.execute(
            "INSERT INTO segments(id, source_id, seq, data, row) VALUES(?,?,?,?,NULL)",
            (orphan.id, orphan.source_id, 0, json.dumps(orphan.to_dict())),
        )
        index._db.commit()
        assert "dropped 1 passage(s) of sources no longer stored" in index.repair()
        assert index.count() == 1 and index.repair() == ""
    finally:
        index.close()
