"""The default backend: everything in one directory on disk, no server.

Layout under the index directory::

    meta.json        format version, embedder name/version/dimension
    store.sqlite     sources and segments (text, locator, seq, vector row)
    lexical/         tantivy BM25 index over rjieba-segmented text (whitespace tokens)
    vectors.f32      dense vectors, one float32 row of ``dim`` per segment ever added
    rows.i32         for each vector row, the owning source's ordinal (-1: removed)

Reopening maps the vector files (``numpy.memmap``) and opens tantivy and SQLite; nothing
is read in full, so a re-run on an unchanged folder opens in well under a second.

Dense search is exact (a matrix-vector product over the mapped vectors): at 100k × 512
that is ~200 MB and a few tens of milliseconds on a busy core, and it needs no graph
build, no tuning and has perfect recall. Filters restrict the rows before the product.

Writes are buffered: tantivy commits lazily before the next search, ``count()`` or
``close()``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tantivy

from deepfolder.index.base import SearchFilter, SearchOptions
from deepfolder.index.embed import Embedder
from deepfolder.index.fusion import (
    Candidate,
    checked_segments,
    collection_of,
    filter_is_empty,
    hybrid_search,
    searchable_text,
    source_matches,
    source_scopes,
)
from deepfolder.index.tokenize import segmented, tokenize_query
from deepfolder.records import Evidence, Segment, Source

FORMAT = 1


class IndexFormatError(RuntimeError):
    """The directory holds an index this version cannot read."""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("source", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("scope", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("kind", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("collection", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    return builder.build()


class EmbeddedIndex:
    """tantivy BM25 + exact dense search + SQLite store, fused by RRF."""

    def __init__(
        self,
        path: Path,
        *,
        dense: bool = True,
        embedder: Embedder | None = None,
        rrf_k: int = 10,
        weights: tuple[float, float] = (1.0, 0.25),
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.rrf_k = rrf_k
        self.weights = weights
        meta_path = self.path / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise IndexFormatError(
                    f"{self.path} holds index format {meta.get('format')}, this deepfolder "
                    f"reads format {FORMAT}; delete the directory to rebuild it"
                )
        else:
            emb = (embedder or Embedder()) if dense else None
            meta = {
                "format": FORMAT,
                "dense": dense,
                "embedder": emb.name if emb else None,
                "embedder_version": emb.version if emb else None,
                "dim": emb.dim if emb else 0,
            }
            meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        self.meta: dict[str, Any] = meta
        self.dense = bool(meta["dense"]) and dense
        self.dim = int(meta["dim"])
        self.embedder = (embedder or Embedder()) if self.dense else None
        if self.embedder is not None and self.embedder.name != meta["embedder"]:
            raise IndexFormatError(
                f"{self.path} was built with embedder {meta['embedder']!r}, not "
                f"{self.embedder.name!r}; delete the directory to rebuild it"
            )

        self._db = sqlite3.connect(self.path / "store.sqlite", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS sources (
                ord INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
                data TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS segments (
                id TEXT PRIMARY KEY, source_id TEXT NOT NULL, seq INTEGER NOT NULL,
                data TEXT NOT NULL, row INTEGER);
            CREATE INDEX IF NOT EXISTS segments_source ON segments(source_id, seq);
            CREATE INDEX IF NOT EXISTS segments_row ON segments(row);
            """
        )
        self._sources: dict[str, Source] = {}
        self._ords: dict[str, int] = {}
        for ord_, sid, data in self._db.execute("SELECT ord, id, data FROM sources"):
            self._sources[sid] = Source.from_dict(json.loads(data))
            self._ords[sid] = ord_

        lexical = self.path / "lexical"
        lexical.mkdir(exist_ok=True)
        self._schema = _schema()
        self._tantivy = tantivy.Index(self._schema, path=str(lexical), reuse=True)
        self._writer: Any = None
        self._dirty = False

        self._vec_path = self.path / "vectors.f32"
        self._rows_path = self.path / "rows.i32"
        self._vectors: np.ndarray | None = None
        self._rows: np.ndarray | None = None

    # --- writing ---------------------------------------------------------------------

    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        """Store sources and segments; a segment id already present is replaced."""
        for source in sources:
            self._db.execute(
                "INSERT INTO sources(id, data) VALUES(?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (source.id, json.dumps(source.to_dict(), ensure_ascii=False)),
            )
            self._sources[source.id] = source
        for sid in {s.id for s in sources}:
            (ord_,) = self._db.execute("SELECT ord FROM sources WHERE id = ?", (sid,)).fetchone()
            self._ords[sid] = ord_
        try:
            segs = checked_segments(segments, self._sources)
        except ValueError:
            self._db.rollback()
            raise
        if not segs:
            self._db.commit()
            return
        existing = self._existing_ids([s.id for s in segs])
        writer = self._get_writer()
        if existing:
            for seg_id in existing:
                writer.delete_documents_by_term("id", seg_id)
            self._kill_rows(
                row
                for (row,) in self._query_in("SELECT row FROM segments WHERE id IN", existing)
                if row is not None
            )
        first_row = self._append_vectors(segs)
        rows: list[int | None] = (
            [first_row + i for i in range(len(segs))] if first_row is not None else []
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO segments(id, source_id, seq, data, row) VALUES(?,?,?,?,?)",
            [
                (
                    seg.id,
                    seg.source_id,
                    seg.seq,
                    json.dumps(seg.to_dict(), ensure_ascii=False),
                    rows[i] if rows else None,
                )
                for i, seg in enumerate(segs)
            ],
        )
        for seg in segs:
            writer.add_document(self._lexical_doc(seg))
        self._db.commit()
        self._dirty = True

    def _lexical_doc(self, seg: Segment) -> tantivy.Document:
        source = self._sources[seg.source_id]
        doc = tantivy.Document()
        doc.add_text("id", seg.id)
        doc.add_text("source", seg.source_id)
        for scope in source_scopes(seg.source_id):
            doc.add_text("scope", scope)
        doc.add_text("kind", source.kind)
        collection = collection_of(source)
        if collection:
            doc.add_text("collection", collection)
        doc.add_text("body", segmented(searchable_text(source, seg.text)))
        return doc

    def remove_sources(self, source_ids: Iterable[str]) -> None:
        asked = list(dict.fromkeys(source_ids))
        if not asked:
            return
        writer = self._get_writer()
        # Unknown ids too: a run killed after the record store committed a removal but
        # before the lexical index did leaves documents only the lexical index still has.
        for sid in asked:
            writer.delete_documents_by_term("source", sid)
        self._dirty = True
        ids = [sid for sid in asked if sid in self._sources]
        if not ids:
            return
        self._kill_rows(
            row
            for (row,) in self._query_in("SELECT row FROM segments WHERE source_id IN", ids)
            if row is not None
        )
        self._query_in("DELETE FROM segments WHERE source_id IN", ids)
        self._query_in("DELETE FROM sources WHERE id IN", ids)
        self._db.commit()
        for sid in ids:
            self._sources.pop(sid, None)
            self._ords.pop(sid, None)
        self._dirty = True

    def _get_writer(self) -> Any:
        if self._writer is None:
            self._writer = self._tantivy.writer(heap_size=64_000_000, num_threads=1)
        return self._writer

    def flush(self) -> None:
        """Make everything added so far searchable (tantivy commit)."""
        if self._dirty and self._writer is not None:
            self._writer.commit()
            self._tantivy.reload()
        self._dirty = False

    def finish_writes(self) -> None:
        """Commit and let go of the lexical writer (tantivy allows one per index across
        processes), so another ingest of the folder can write while this one searches."""
        self.flush()
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def repair(self) -> str:
        """Bring the stores back in line after a killed writer; what was done, or ''.

        SQLite is the record of truth (``add`` commits it last). Vector rows past the
        last row a stored segment uses were appended by an ``add`` that never committed,
        and are cut off (a half-written row would shift every later one). When the
        lexical index does not hold exactly the stored segments, it is rebuilt from
        SQLite. Call it only while holding the ingest lock (``ingest.lock``).
        """
        self.flush()  # this process's own pending writes are not damage
        notes = []
        orphans = self._db.execute(
            "DELETE FROM segments WHERE source_id NOT IN (SELECT id FROM sources)"
        ).rowcount
        self._db.commit()
        if orphans:
            notes.append(f"dropped {orphans} passage(s) of sources no longer stored")
        cut = self._repair_vectors()
        if cut:
            notes.append(f"dropped {cut} vector row(s) of an interrupted write")
        self._tantivy.reload()
        lexical = self._tantivy.searcher().num_docs
        stored = self.count()
        if lexical != stored:
            self._rebuild_lexical()
            notes.append(
                f"rebuilt the lexical index ({lexical} documents for {stored} stored passages, "
                "left by an interrupted ingest)"
            )
        return "; ".join(notes)

    def _repair_vectors(self) -> int:
        """Cut the vector files back to the rows committed segments use; rows cut."""

        def size(path: Path) -> int:
            return path.stat().st_size if path.exists() else 0

        rows_bytes, vec_bytes = size(self._rows_path), size(self._vec_path)
        if not rows_bytes and not vec_bytes:
            return 0
        (max_row,) = self._db.execute("SELECT MAX(row) FROM segments").fetchone()
        used = 0 if max_row is None else int(max_row) + 1
        full_vectors = vec_bytes // (4 * self.dim) if self.dim else 0
        valid = min(used, rows_bytes // 4, full_vectors)
        if valid < used:  # rows a segment claims but the files lack: no vector for them
            self._db.execute("UPDATE segments SET row = NULL WHERE row >= ?", (valid,))
            self._db.commit()
        if rows_bytes == valid * 4 and vec_bytes == valid * 4 * self.dim:
            return 0
        self._vectors = self._rows = None
        for path, width in ((self._rows_path, 4), (self._vec_path, 4 * self.dim)):
            with open(path, "ab") as fh:
                fh.truncate(valid * width)
        return max(rows_bytes // 4, full_vectors) - valid

    def _rebuild_lexical(self) -> None:
        writer = self._get_writer()
        writer.delete_all_documents()
        for (data,) in self._db.execute("SELECT data FROM segments"):
            seg = Segment.from_dict(json.loads(data))
            if seg.source_id in self._sources:
                writer.add_document(self._lexical_doc(seg))
        self._dirty = True
        self.flush()

    def _existing_ids(self, ids: list[str]) -> list[str]:
        return [r[0] for r in self._query_in("SELECT id FROM segments WHERE id IN", ids)]

    def _query_in(self, sql: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run ``sql (?, ?, …)`` over ``values`` in chunks below SQLite's variable limit."""
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(values), 900):
            part = list(values[start : start + 900])
            marks = ",".join("?" * len(part))
            out.extend(self._db.execute(f"{sql} ({marks})", part).fetchall())
        return out

    # --- vectors ---------------------------------------------------------------------

    def _vector_count(self) -> int:
        return self._rows_path.stat().st_size // 4 if self._rows_path.exists() else 0

    def _append_vectors(self, segs: list[Segment]) -> int | None:
        if not self.dense or self.embedder is None:
            return None
        texts = [searchable_text(self._sources[seg.source_id], seg.text) for seg in segs]
        vectors = self.embedder.embed(texts).astype(np.float32)
        first = self._vector_count()
        owners = np.asarray([self._ords[seg.source_id] for seg in segs], dtype=np.int32)
        with open(self._vec_path, "ab") as fh:
            fh.write(np.ascontiguousarray(vectors).tobytes())
        with open(self._rows_path, "ab") as fh:
            fh.write(owners.tobytes())
        self._vectors = self._rows = None
        return first

    def _kill_rows(self, rows: Iterable[int]) -> None:
        dead = sorted(set(rows))
        if not dead or not self._rows_path.exists():
            return
        self._vectors = self._rows = None
        owners = np.memmap(self._rows_path, dtype=np.int32, mode="r+")
        owners[np.asarray(dead)] = -1
        owners.flush()
        del owners

    def _mapped(self) -> tuple[np.ndarray, np.ndarray]:
        if self._rows is None or self._vectors is None:
            n = self._vector_count()
            if n == 0:
                return np.zeros((0, self.dim), np.float32), np.zeros(0, np.int32)
            self._rows = np.memmap(self._rows_path, dtype=np.int32, mode="r", shape=(n,))
            self._vectors = np.memmap(
                self._vec_path, dtype=np.float32, mode="r", shape=(n, self.dim)
            )
        return self._vectors, self._rows

    # --- searching -------------------------------------------------------------------

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        self.flush()
        flt = options.filter
        chosen = hybrid_search(
            options,
            lexical=lambda n: self.lexical_candidates(query, flt, n),
            dense=(lambda n: self.dense_candidates(query, flt, n)) if self.dense else None,
            weights=self.weights,
            rrf_k=self.rrf_k,
        )
        return self._evidence(chosen)

    def lexical_candidates(self, query: str, flt: SearchFilter, n: int) -> list[Candidate]:
        tokens = tokenize_query(query)
        if not tokens:
            return []
        schema = self._schema
        text_query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in tokens]
        )
        parts = [(tantivy.Occur.Must, text_query)]
        if flt.source_ids:
            q = tantivy.Query.term_set_query(schema, "scope", list(flt.source_ids))
            parts.append((tantivy.Occur.Must, q))
        if flt.kinds:
            q = tantivy.Query.term_set_query(schema, "kind", list(flt.kinds))
            parts.append((tantivy.Occur.Must, q))
        if flt.collections:
            q = tantivy.Query.term_set_query(schema, "collection", list(flt.collections))
            parts.append((tantivy.Occur.Must, q))
        final = text_query if len(parts) == 1 else tantivy.Query.boolean_query(parts)
        searcher = self._tantivy.searcher()
        result = searcher.search(final, n)
        out = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            out.append(Candidate(doc["id"][0], doc["source"][0], float(score)))
        return out

    def dense_candidates(self, query: str, flt: SearchFilter, n: int) -> list[Candidate]:
        if not self.dense or self.embedder is None or not query.strip():
            return []
        vectors, owners = self._mapped()
        if len(owners) == 0:
            return []
        q = self.embedder.embed([query])[0]
        if filter_is_empty(flt):
            scores = vectors @ q
            scores[owners < 0] = -np.inf
            candidates = np.arange(len(owners))
        else:
            allowed = [
                self._ords[sid] for sid, src in self._sources.items() if source_matches(src, flt)
            ]
            candidates = np.flatnonzero(np.isin(owners, np.asarray(allowed, dtype=np.int32)))
            if len(candidates) == 0:
                return []
            scores = vectors[candidates] @ q
        top = min(n, int(np.count_nonzero(np.isfinite(scores))))
        if top == 0:
            return []
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        rows = [int(candidates[i]) for i in best]
        found = {
            row: (seg_id, source_id)
            for seg_id, source_id, row in self._query_in(
                "SELECT id, source_id, row FROM segments WHERE row IN", rows
            )
        }
        return [
            Candidate(found[row][0], found[row][1], float(scores[i]))
            for row, i in zip(rows, best, strict=True)
            if row in found
        ]

    def _evidence(self, chosen: Sequence[Candidate]) -> list[Evidence]:
        if not chosen:
            return []
        rows = dict(
            self._query_in(
                "SELECT id, data FROM segments WHERE id IN", [c.segment_id for c in chosen]
            )
        )
        out = []
        for cand in chosen:
            data = rows.get(cand.segment_id)
            if data is None:
                continue
            seg = Segment.from_dict(json.loads(data))
            out.append(Evidence(seg, self._sources[seg.source_id], cand.score))
        return out

    # --- reading ---------------------------------------------------------------------

    def get(self, evidence_id: str) -> Evidence | None:
        row = self._db.execute("SELECT data FROM segments WHERE id = ?", (evidence_id,)).fetchone()
        if row is None:
            return None
        seg = Segment.from_dict(json.loads(row[0]))
        return Evidence(seg, self._sources[seg.source_id], 0.0)

    def source(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def segments_of(self, source_id: str) -> list[Segment]:
        """The source's segments; for a later copy of an article indexed once
        (``meta["duplicate_of"]``, see ``deepfolder.ingest.dedup``), its first copy's."""
        found = self._stored_segments(source_id)
        source = self._sources.get(source_id)
        first = source.meta.get("duplicate_of") if source is not None and not found else None
        return self._stored_segments(first) if isinstance(first, str) else found

    def _stored_segments(self, source_id: str) -> list[Segment]:
        return [
            Segment.from_dict(json.loads(data))
            for (data,) in self._db.execute(
                "SELECT data FROM segments WHERE source_id = ? ORDER BY seq, id", (source_id,)
            )
        ]

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM segments").fetchone()
        return int(n)

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None
        self._vectors = self._rows = None
        self._db.close()

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
