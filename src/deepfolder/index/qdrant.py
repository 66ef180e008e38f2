"""The distributed backend: a Qdrant server or cluster through ``qdrant-client``.

With ``retrieval.backend_url`` set (``http://host:6333``) the data lives in that Qdrant
deployment (single node or a sharded, replicated cluster: the client code is the same);
without it, ``qdrant-client``'s *local mode* keeps it under the index directory, which
runs the very same client calls in-process (that is how the test suite exercises this
backend here; local mode is too slow for 100k chunks, see docs/notes/retrieval.md).

Mapping onto Qdrant:

- collection ``<name>_segments``: one point per segment, id = UUID5 of the evidence id,
  a named dense vector ``dense`` (cosine, the same embedder as the embedded backend) and a
  named sparse vector ``lex`` holding BM25-style term weights of the rjieba tokens (hashed
  to 32-bit indices) with Qdrant's ``IDF`` modifier, so the server supplies the IDF part.
  The payload carries the segment, its source id, kind, collection and ``scope`` (the id
  and its directory/collection prefixes, for filters).
- collection ``<name>_sources``: one vector-less point per source.

Fusion and diversity run client-side with the same code as the embedded backend, so the
two rank and diversify alike. The lexical scores differ slightly: the sparse weights use a
fixed average document length instead of the corpus's.
"""

from __future__ import annotations

import uuid
import zlib
from collections import Counter
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
AVG_DOC_TOKENS = 150.0
"""Assumed average chunk length in tokens for the sparse BM25 weights (a 400-character
Chinese chunk is ~150–250 rjieba search-mode tokens)."""
UPSERT_BATCH = 256


def _require_client() -> Any:
    try:
        import qdrant_client
    except ImportError as exc:
        raise RuntimeError(
            "the qdrant backend needs the qdrant-client package: `pip install "
            "qdrant-client==1.20.0`, or set retrieval.backend = 'embedded'"
        ) from exc
    return qdrant_client


def _token_index(token: str) -> int:
    return zlib.crc32(token.encode("utf-8"))


def sparse_document(text: str) -> tuple[list[int], list[float]]:
    """BM25 term-frequency part of each token's weight (the IDF part is the server's)."""
    counts = Counter(_token_index(t) for t in tokenize(text))
    length = sum(counts.values()) or 1
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / AVG_DOC_TOKENS)
    indices = sorted(counts)
    return indices, [counts[i] * (BM25_K1 + 1) / (counts[i] + norm) for i in indices]


def _point_id(segment_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "deepfolder:" + segment_id))


class QdrantIndex:
    """Index on a Qdrant server/cluster (``url``) or in qdrant-client's local mode."""

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
        qc = _require_client()
        from qdrant_client import models

        self._models = models
        self.path = Path(path)
        self.url = url
        self.rrf_k = rrf_k
        self.weights = weights
        self.dense = dense
        self.embedder = (embedder or Embedder()) if dense else None
        self._segments, self._sources_name = collection_names(self.path)
        if url:
            self._client = qc.QdrantClient(url=url, timeout=60)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._client = qc.QdrantClient(path=str(self.path / "qdrant"))
        self._ensure_collections()
        self._sources: dict[str, Source] = {
            src.id: src for src in (self._source_from(p) for p in self._scroll(self._sources_name))
        }

    def _ensure_collections(self) -> None:
        m = self._models
        client = self._client
        if not client.collection_exists(self._segments):
            dim = self.embedder.dim if self.embedder else 0
            vectors = {"dense": m.VectorParams(size=dim, distance=m.Distance.COSINE)} if dim else {}
            client.create_collection(
                self._segments,
                vectors_config=vectors,
                sparse_vectors_config={"lex": m.SparseVectorParams(modifier=m.Modifier.IDF)},
            )
            if self.url:  # payload indexes exist only on a server (local mode warns)
                for key in ("scope", "kind", "collection", "source_id"):
                    client.create_payload_index(self._segments, key, m.PayloadSchemaType.KEYWORD)
        else:
            info = client.get_collection(self._segments)
            has_dense = "dense" in (info.config.params.vectors or {})
            self.dense = self.dense and has_dense
            if not self.dense:
                self.embedder = None
        if not client.collection_exists(self._sources_name):
            client.create_collection(self._sources_name, vectors_config={})

    # --- writing ---------------------------------------------------------------------

    def add(self, sources: Sequence[Source], segments: Sequence[Segment]) -> None:
        m = self._models
        for source in sources:
            self._sources[source.id] = source
        if sources:
            self._client.upsert(
                self._sources_name,
                [
                    m.PointStruct(id=_point_id("source:" + s.id), vector={}, payload=s.to_dict())
                    for s in sources
                ],
            )
        unique = checked_segments(segments, self._sources)
        for start in range(0, len(unique), UPSERT_BATCH):
            batch = unique[start : start + UPSERT_BATCH]
            texts = [searchable_text(self._sources[s.source_id], s.text) for s in batch]
            dense = self.embedder.embed(texts) if self.embedder else None
            points = []
            for i, seg in enumerate(batch):
                indices, values = sparse_document(texts[i])
                vector: dict[str, Any] = {"lex": m.SparseVector(indices=indices, values=values)}
                if dense is not None:
                    vector["dense"] = dense[i].tolist()
                source = self._sources[seg.source_id]
                payload = seg.to_dict() | {
                    "scope": source_scopes(seg.source_id),
                    "kind": source.kind,
                    "collection": collection_of(source),
                }
                points.append(m.PointStruct(id=_point_id(seg.id), vector=vector, payload=payload))
            self._client.upsert(self._segments, points)

    def remove_sources(self, source_ids: Iterable[str]) -> None:
        m = self._models
        ids = [sid for sid in dict.fromkeys(source_ids) if sid in self._sources]
        if not ids:
            return
        selector = m.FilterSelector(
            filter=m.Filter(must=[m.FieldCondition(key="source_id", match=m.MatchAny(any=ids))])
        )
        self._client.delete(self._segments, points_selector=selector)
        self._client.delete(
            self._sources_name,
            points_selector=m.PointIdsList(points=[_point_id("source:" + s) for s in ids]),
        )
        for sid in ids:
            self._sources.pop(sid, None)

    # --- searching -------------------------------------------------------------------

    def _filter(self, flt: SearchFilter) -> Any:
        m = self._models
        must = []
        if flt.source_ids:
            must.append(m.FieldCondition(key="scope", match=m.MatchAny(any=list(flt.source_ids))))
        if flt.kinds:
            must.append(m.FieldCondition(key="kind", match=m.MatchAny(any=list(flt.kinds))))
        if flt.collections:
            must.append(
                m.FieldCondition(key="collection", match=m.MatchAny(any=list(flt.collections)))
            )
        return m.Filter(must=must) if must else None

    def _ranked(self, query: Any, using: str, flt: SearchFilter, n: int) -> list[Any]:
        return self._client.query_points(
            self._segments,
            query=query,
            using=using,
            query_filter=self._filter(flt),
            limit=n,
            with_payload=True,
        ).points

    def search(self, query: str, options: SearchOptions) -> list[Evidence]:
        m = self._models
        payloads: dict[str, dict[str, Any]] = {}
        flt = options.filter

        def lexical(n: int) -> list[Candidate]:
            tokens = tokenize_query(query)
            if not tokens:
                return []
            indices = sorted({_token_index(t) for t in tokens})
            sparse = m.SparseVector(indices=indices, values=[1.0] * len(indices))
            return self._candidates(self._ranked(sparse, "lex", flt, n), payloads)

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
    def _candidates(points: list[Any], payloads: dict[str, dict[str, Any]]) -> list[Candidate]:
        out = []
        for point in points:
            payload = point.payload or {}
            payloads[payload["id"]] = payload
            out.append(Candidate(payload["id"], payload["source_id"], float(point.score)))
        return out

    def _evidence(self, payload: dict[str, Any], score: float = 0.0) -> Evidence:
        seg = Segment.from_dict(payload)
        return Evidence(seg, self._sources[seg.source_id], score)

    # --- reading ---------------------------------------------------------------------

    def _scroll(self, collection: str, flt: Any = None) -> list[Any]:
        out: list[Any] = []
        offset = None
        while True:
            points, offset = self._client.scroll(
                collection, scroll_filter=flt, limit=1000, offset=offset, with_payload=True
            )
            out.extend(points)
            if offset is None:
                return out

    @staticmethod
    def _source_from(point: Any) -> Source:
        return Source.from_dict(point.payload)

    def get(self, evidence_id: str) -> Evidence | None:
        points = self._client.retrieve(self._segments, [_point_id(evidence_id)], with_payload=True)
        if not points:
            return None
        return self._evidence(points[0].payload)

    def source(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)

    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def segments_of(self, source_id: str) -> list[Segment]:
        m = self._models
        flt = m.Filter(
            must=[m.FieldCondition(key="source_id", match=m.MatchValue(value=source_id))]
        )
        segments = [Segment.from_dict(p.payload) for p in self._scroll(self._segments, flt)]
        return sorted(segments, key=lambda s: (s.seq, s.id))

    def count(self) -> int:
        return int(self._client.count(self._segments, exact=True).count)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
