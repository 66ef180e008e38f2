"""The Milvus backend: a Milvus standalone server or cluster through ``pymilvus``.

With ``retrieval.backend_url`` set (``http://host:19530``) the data lives in that Milvus
deployment (standalone or cluster: the client code is the same); without it, pymilvus runs
milvus-lite embedded, with its files under the index directory. The tests run the contract
against both the embedded mode and a real ``milvus-lite server`` gRPC process.

Mapping: collection ``deepfolder_<name>_segments`` holds one row per segment, primary key
a 63-bit hash of the evidence id (re-adding upserts), the segment as JSON, ``source_id``,
``kind``, ``collection`` (``""`` for plain files), ``scope`` (the id and its directory /
collection prefixes, for ``ARRAY_CONTAINS_ANY`` filters), ``dense`` (IP on the embedder's
L2-normalised vectors = cosine) and the lexical pair ``lex`` → ``sparse``. Collection
``deepfolder_<name>_sources`` holds one row per source (Milvus requires a vector field in
every collection, so it carries a constant 2-d placeholder).

Lexical side: Milvus' built-in BM25 function (the server keeps document frequencies and
average length, so the IDF is exact, unlike the Qdrant backend's fixed-length sparse
weights), fed with *our* tokens: ``lex`` holds the rjieba tokens of ``searchable_text``
(title + text), each written as the 8 hex digits of its CRC-32, under the ``standard``
analyzer. A run of ASCII letters and digits is one token for every Milvus ``standard``
tokenizer, so the server indexes exactly what ``tokenize``/``tokenize_query`` produce, as
the other backends do. Not the built-in ``jieba`` analyzer: milvus-lite's needs the extra
``jieba`` package and is another segmenter (Python jieba) than a Milvus server's (Rust),
so the test server and a cluster would rank differently, and both unlike the embedded
backend; and ``standard`` on raw Chinese yields single characters on a Milvus server.

Fusion and diversity run client-side with the same code as the other backends.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from deepfolder.index.base import SearchFilter, SearchOptions
from deepfolder.index.embed import Embedder
from deepfolder.index.fusion import (
    Candidate,
    checked_segments,
    collection_names,
    collection_of,
    hybrid_search,
    searchable_text,
    source_scopes,
)
from deepfolder.index.tokenize import tokenize, tokenize_query
from deepfolder.records import Evidence, Segment, Source

BM25_K1 = 1.2
BM25_B = 0.75
UPSERT_BATCH = 256
DELETE_BATCH = 1000
MAX_VARCHAR = 65535
MAX_SCOPES = 256


def _require_client() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise RuntimeError(
            "the milvus backend needs pymilvus (and milvus-lite without a server URL): "
            "`pip install \"deepfolder[milvus]\"`, or set retrieval.backend = 'embedded'"
        ) from exc
    return pymilvus


class _DropLiteTimestampWarning(logging.Filter):
    """milvus-lite answers no MVCC timestamp to query iterators; pymilvus then logs a
    warning on every scan although the client-side timestamp it falls back to is right."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_DropLiteTimestampWarning())


def _pk(key: str) -> int:
    """A stable signed 63-bit primary key for an evidence or source id."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()) >> 1


def lexical_text(text: str) -> str:
    """The rjieba tokens of ``text`` as hashed ASCII words (what ``lex`` stores)."""
    words = [f"{zlib.crc32(t.encode('utf-8')):08x}" for t in tokenize(text)]
    return " ".join(words[: MAX_VARCHAR // 9])  # a VARCHAR holds at most 65535 bytes


def _quote(value: str) -> str:
    """A Milvus string literal (JSON's quoting is Milvus' quoting)."""
    return json.dumps(value, ensure_ascii=False)


def _literal(values: Iterable[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


class MilvusIndex:
    """Index on a Milvus server/cluster (``url``) or in embedded milvus-lite."""

    def __init__(
        self,
        path: Path,
        *,
        url: str | None = None,
        dense: bool = True,
        embedder: Embedder | None = None,
        rrf_k: int = 10,
        weights: tuple[float, float] = (1.0, 0.25),
    ) -> None:
        pm = _require_client()
        self._pm = pm
        self.path = Path(path)
        self.url = url
        self.rrf_k = rrf_k
        self.weights = weights
        self.dense = dense
        self.embedder = (embedder or Embedder()) if dense else None
        self._segments, self._sources_name = collection_names(self.path)
        self._lite_path: str | None = None
        if url:
            try:
                self._client = pm.MilvusClient(uri=url, timeout=60)
            except pm.MilvusException as exc:
                raise RuntimeError(
                    f"cannot reach the Milvus server at {url} ({exc.message}): start it or "
                    "fix retrieval.backend_url, or set retrieval.backend = 'embedded'"
                ) from exc
        else:
            if importlib.util.find_spec("milvus_lite") is None:
                raise RuntimeError(
                    "the milvus backend without retrieval.backend_url runs milvus-lite: "
                    '`pip install "deepfolder[milvus]"`, or set retrieval.backend_url'
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self._lite_path = str((self.path / "milvus.db").resolve())
            self._client = pm.MilvusClient(uri=self._lite_path)
        self._ensure_collections()
        # milvus-lite searches rows still in its write buffer by brute force in Python
        # (10k chunks: 2.7 s a query instead of 80 ms), so it is flushed before a search
        # that follows writes. A Milvus server searches growing segments natively and
        # rate-limits flushes, so it is left alone.
        self._flush_before_search = self._client.get_server_version().startswith("milvus_lite")
        self._unflushed = False
        rows = self._scan(self._sources_name, "", ["source"])
        self._sources: dict[str, Source] = {
            src.id: src for src in (Source.from_dict(r["source"]) for r in rows)
        }

    def _ensure_collections(self) -> None:
        pm, client = self._pm, self._client
        dt = pm.DataType
        text = {"max_length": MAX_VARCHAR}
        if not client.has_collection(self._segments):
            dim = self.embedder.dim if self.embedder else 0
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            analyzer = {"enable_analyzer": True, "analyzer_params": {"tokenizer": "standard"}}
            for field, kind, extra in (
                ("pk", dt.INT64, {"is_primary": True}),
                ("segment", dt.JSON, {}),
                ("source_id", dt.VARCHAR, text),
                ("kind", dt.VARCHAR, {"max_length": 256}),
                ("collection", dt.VARCHAR, text),
                (
                    "scope",
                    dt.ARRAY,
                    {"element_type": dt.VARCHAR, "max_capacity": MAX_SCOPES, **text},
                ),
                ("lex", dt.VARCHAR, {**analyzer, **text}),
                ("sparse", dt.SPARSE_FLOAT_VECTOR, {}),
            ):
                schema.add_field(field, kind, **extra)
            bm25 = pm.Function(
                name="lex_bm25",
                function_type=pm.FunctionType.BM25,
                input_field_names=["lex"],
                output_field_names=["sparse"],
            )
            schema.add_function(bm25)
            params = client.prepare_index_params()
            bm25_params = {"bm25_k1": BM25_K1, "bm25_b": BM25_B}
            params.add_index(
                "sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25", params=bm25_params
            )
            if dim:
                schema.add_field("dense", dt.FLOAT_VECTOR, dim=dim)
                params.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
            self._create(self._segments, schema, params)
        else:
            fields = client.describe_collection(self._segments)["fields"]
            self.dense = self.dense and any(f["name"] == "dense" for f in fields)
            if not self.dense:
                self.embedder = None
        if not client.has_collection(self._sources_name):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("pk", dt.INT64, is_primary=True)
            schema.add_field("source", dt.JSON)
            schema.add_field("placeholder", dt.FLOAT_VECTOR, dim=2)
            params = client.prepare_index_params()
            params.add_index("placeholder", index_type="FLAT", metric_type="L2")
            self._create(self._sources_name, schema, params)
        for collection in (self._segments, self._sources_name):
            client.load_collection(collection)  # a server restart may leave them released

    def _create(self, name: str, schema: Any, params: Any) -> None:
        # sync=False: pymilvus would otherwise poll each new index every 0.5 s; on an empty
        # collection there is nothing to build, and loading waits for what must be ready.
        self._client.create_collection(name, schema=schema, consistency_level="Strong")
        self._client.create_index(name, params, sync=False)

    # --- writing ---------------------------------------------------------------------

    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        for source in sources:
            self._sources[source.id] = source
        if sources:
            rows = [
                {"pk": _pk("source:" + s.id), "source": s.to_dict(), "placeholder": [0.0, 0.0]}
                for s in sources
            ]
            self._client.upsert(self._sources_name, rows)
        unique = checked_segments(segments, self._sources)
        for start in range(0, len(unique), UPSERT_BATCH):
            batch = unique[start : start + UPSERT_BATCH]
            texts = [searchable_text(self._sources[s.source_id], s.text) for s in batch]
            dense = self.embedder.embed(texts) if self.embedder else None
            rows = []
            for i, seg in enumerate(batch):
                source = self._sources[seg.source_id]
                row: dict[str, Any] = {
                    "pk": _pk(seg.id),
                    "segment": seg.to_dict(),
                    "source_id": seg.source_id,
                    "kind": source.kind,
                    "collection": collection_of(source) or "",
                    "scope": source_scopes(seg.source_id)[-MAX_SCOPES:],
                    "lex": lexical_text(texts[i]),
                }
                if dense is not None:
                    row["dense"] = dense[i].tolist()
                rows.append(row)
            self._client.upsert(self._segments, rows)
            self._unflushed = True

    def remove_sources(self, source_ids: Iterable[str]) -> None:
        ids = [sid for sid in dict.fromkeys(source_ids) if sid in self._sources]
        for start in range(0, len(ids), DELETE_BATCH):
            batch = ids[start : start + DELETE_BATCH]
            self._client.delete(self._segments, filter=f"source_id in {_literal(batch)}")
            self._client.delete(self._sources_name, ids=[_pk("source:" + s) for s in batch])
        for sid in ids:
            self._sources.pop(sid, None)

    # --- searching -------------------------------------------------------------------

    @staticmethod
    def _filter(flt: SearchFilter) -> str:
        parts = []
        if flt.source_ids:
            parts.append(f"ARRAY_CONTAINS_ANY(scope, {_literal(flt.source_ids)})")
        if flt.kinds:
            parts.append(f"kind in {_literal(flt.kinds)}")
        if flt.collections:
            parts.append(f"collection in {_literal(flt.collections)}")
        return " and ".join(parts)

    def _ranked(self, data: Any, field: str, flt: SearchFilter, n: int) -> list[dict[str, Any]]:
        hits = self._client.search(
            self._segments,
            data=[data],
            anns_field=field,
            filter=self._filter(flt),
            limit=n,
            output_fields=["segment"],
            search_params={"metric_type": "BM25" if field == "sparse" else "IP"},
        )
        return list(hits[0]) if hits else []

    def _flush(self) -> None:
        if self._flush_before_search and self._unflushed:
            self._client.flush(self._segments)
            self._unflushed = False

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        self._flush()
        payloads: dict[str, dict[str, Any]] = {}
        flt = options.filter

        def lexical(n: int) -> list[Candidate]:
            words = lexical_text(" ".join(tokenize_query(query)))
            return (
                self._candidates(self._ranked(words, "sparse", flt, n), payloads) if words else []
            )

        def dense(n: int) -> list[Candidate]:
            if self.embedder is None or not query.strip():
                return []
            vector = self.embedder.embed([query])[0].tolist()
            return self._candidates(self._ranked(vector, "dense", flt, n), payloads)

        chosen = hybrid_search(
            options,
            lexical=lexical,
            dense=dense if self.dense else None,
            weights=self.weights,
            rrf_k=self.rrf_k,
        )
        return [self._evidence(payloads[c.segment_id], c.score) for c in chosen]

    @staticmethod
    def _candidates(
        hits: list[dict[str, Any]], payloads: dict[str, dict[str, Any]]
    ) -> list[Candidate]:
        out = []
        for hit in hits:
            payload = hit["entity"]["segment"]
            payloads[payload["id"]] = payload
            # Hits come best first; milvus-lite reports BM25 as a negated distance.
            out.append(Candidate(payload["id"], payload["source_id"], abs(hit["distance"])))
        return out

    def _evidence(self, payload: dict[str, Any], score: float = 0.0) -> Evidence:
        seg = Segment.from_dict(payload)
        return Evidence(seg, self._sources[seg.source_id], score)

    # --- reading ---------------------------------------------------------------------

    def _scan(self, collection: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """All matching rows (an iterator: a plain query is capped at 16384 on a server)."""
        iterator = self._client.query_iterator(
            collection, batch_size=1000, filter=expr, output_fields=fields
        )
        out: list[dict[str, Any]] = []
        try:
            while batch := iterator.next():
                out.extend(batch)
        finally:
            iterator.close()
        return out

    def get(self, evidence_id: str) -> Evidence | None:
        rows = self._client.get(self._segments, ids=[_pk(evidence_id)], output_fields=["segment"])
        rows = [r for r in rows if r["segment"]["id"] == evidence_id]
        return self._evidence(rows[0]["segment"]) if rows else None

    def source(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def segments_of(self, source_id: str) -> list[Segment]:
        rows = self._scan(self._segments, f"source_id == {_quote(source_id)}", ["segment"])
        segments = [Segment.from_dict(r["segment"]) for r in rows]
        return sorted(segments, key=lambda s: (s.seq, s.id))

    def count(self) -> int:
        rows = self._client.query(self._segments, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def close(self) -> None:
        self._flush()
        self._client.close()
        if self._lite_path is not None:  # stop milvus-lite's in-process server, flush files
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self._lite_path)

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
