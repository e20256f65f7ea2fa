"""Vector stores: one Protocol, Qdrant Edge embedded (default) and qdrant-client (server, cluster, local mode).

Each point holds a named dense vector (``dense``, cosine) and a named sparse vector (``sparse``,
BM25 term frequencies with Qdrant's IDF modifier). Hybrid search is one batch of the two
retrievers in the engine, fused with weighted reciprocal rank fusion (Qdrant's RRF formula) and
the usage prior, then one retrieve of the winners' payloads. Tenants,
kinds, sources and languages are payload-indexed keywords, so a filter never scans.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from retrieval._types import Document, Passage, SearchFilters
from retrieval.sparse import SparseVector

SearchMode = Literal["hybrid", "dense", "sparse"]
DENSE = "dense"
SPARSE = "sparse"
#: RRF's k. Qdrant scores rank r (1-based) of a retriever with weight w as 1 / (r / w + k - 1).
#: k = 2 (Qdrant's own example value) rewards agreement at the top; 60 (Cormack et al.) flattens
#: ranks so much that neither the weights nor the prior can act (benchmarks/retrieval.py: k=60
#: loses MRR to BM25 alone on JSQuAD).
RRF_K = 2
KEYWORD_FIELDS = ("tenant", "kind", "source", "language", "doc_id")


class IndexBusy(RuntimeError):
    """The embedded index is held by another process."""


@dataclass
class IndexedPoint:
    document: Document
    dense: npt.NDArray[np.float32] | None
    sparse: SparseVector


@dataclass
class Hit:
    """One retriever's (or the fusion's) view of a point."""

    point_id: str
    score: float
    payload: dict[str, Any]


@runtime_checkable
class VectorStore(Protocol):
    def ensure_collection(self, dim: int) -> None: ...

    def upsert(self, points: Sequence[IndexedPoint]) -> None: ...

    def delete(self, tenant: str, doc_ids: Sequence[str]) -> None: ...

    def query(
        self,
        *,
        dense: npt.NDArray[np.float32] | None,
        sparse: SparseVector | None,
        filters: SearchFilters,
        limit: int,
        mode: SearchMode,
        prior_weight: float = 0.0,
        exact: bool = False,
    ) -> dict[str, list[Hit]]:
        """Hits of the requested mode under key ``mode``, plus the single retrievers used by a hybrid query.

        Hybrid is RRF over the two retrievers, then ``score + prior_weight * prior`` (a formula
        stage) so often-used procedures win ties between near-equal matches. ``exact`` makes the
        dense retriever scan instead of walking the HNSW graph: deterministic and exact, a few ms
        for tens of thousands of points (the embedded default), too slow for millions.
        """
        ...

    def content_hashes(self, tenant: str, source: str | None = None) -> dict[str, str]: ...

    def count(self, tenant: str | None = None) -> int: ...

    def close(self) -> None: ...


def fusion_weights(single: dict[str, list[Hit]], names: list[str]) -> list[float]:
    """RRF weight of each retriever for this query.

    The lexical retriever gets more say when its best match stands out: 1 + (s1 - s2) / s1 of its
    top two BM25 scores. A question that reuses a passage's words (JSQuAD) has one clear lexical
    winner; a citizen's paraphrase scatters over common terms and leaves the dense ranking in charge.
    """
    weights = []
    for name in names:
        hits = single.get(name, [])
        if name == "sparse" and len(hits) >= 2 and hits[0].score > 0:
            weights.append(1.0 + (hits[0].score - hits[1].score) / hits[0].score)
        else:
            weights.append(1.0)
    return weights


def rrf_fuse(
    single: dict[str, list[Hit]], names: list[str], *, limit: int, prior_weight: float
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion, then the usage prior: ``(point id, score)``, best first.

    Rank r (1-based) of a retriever with weight w scores 1 / (r / w + k - 1), Qdrant's own RRF
    formula, so the ranking is what Qdrant's ``Fusion.Rrf(k, weights)`` gives. It runs here, on
    the lists the single retrievers already returned, instead of as a second engine query that
    would search both indexes again (half the store time per question).
    """
    if len(names) == 1 and not prior_weight:
        return [(h.point_id, h.score) for h in single[names[0]][:limit]]
    scores: dict[str, float] = {}
    priors: dict[str, float] = {}
    for name, weight in zip(names, fusion_weights(single, names), strict=True):
        for rank, hit in enumerate(single[name], start=1):
            scores[hit.point_id] = scores.get(hit.point_id, 0.0) + 1.0 / (rank / weight + RRF_K - 1)
            priors[hit.point_id] = float(hit.payload.get("prior") or 0.0)
    final = {pid: score + prior_weight * priors[pid] for pid, score in scores.items()}
    ranked = sorted(final, key=lambda pid: (-final[pid], pid))
    return [(pid, final[pid]) for pid in ranked[:limit]]


def point_id(tenant: str, doc_id: str) -> str:
    """Qdrant ids are ints or UUIDs; documents have readable ids, so map them deterministically."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tosei:{tenant}/{doc_id}"))


def point_payload(document: Document) -> dict[str, Any]:
    return {
        "doc_id": document.id,
        "tenant": document.tenant,
        "kind": document.kind,
        "source": document.source,
        "title": document.title,
        "text": document.text,
        "url": document.url,
        "language": document.language,
        "content_hash": document.content_hash,
        "prior": document.prior,
        "payload": document.payload,
    }


def hit_to_passage(hit: Hit) -> Passage:
    p = hit.payload
    return Passage(
        id=p["doc_id"],
        tenant=p["tenant"],
        kind=p["kind"],
        source=p["source"],
        title=p["title"],
        text=p["text"],
        url=p.get("url"),
        language=p.get("language", "ja"),
        score=hit.score,
        payload=p.get("payload") or {},
    )


# --------------------------------------------------------------------------------------------
# Qdrant Edge (embedded, in-process; the real Qdrant engine without a server)
# --------------------------------------------------------------------------------------------


class EdgeStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._shard: Any = None
        self._lock = threading.RLock()
        if (path / "edge_config.json").exists() or any(path.glob("segments*")):
            self._open()

    def _open(self) -> None:
        from qdrant_edge import EdgeShard

        try:
            self._shard = EdgeShard.load(str(self.path))
        except Exception as exc:
            # an Edge shard belongs to one process at a time (its write-ahead log is locked)
            if "WouldBlock" in str(exc):
                raise IndexBusy(
                    f"the index at {self.path} is open in another process (e.g. `tosei serve`); "
                    "stop it, or ask the running server (/v1/search, /v1/ask)"
                ) from exc
            raise

    @property
    def exists(self) -> bool:
        return self._shard is not None

    def ensure_collection(self, dim: int) -> None:
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeShard,
            EdgeSparseVectorParams,
            EdgeVectorParams,
            KeywordIndexParams,
            Memory,
            Modifier,
            PayloadSchemaType,
            UpdateOperation,
        )

        with self._lock:
            if self._shard is not None:
                return
            self.path.mkdir(parents=True, exist_ok=True)
            config = EdgeConfig(
                vectors={DENSE: EdgeVectorParams(size=dim, distance=Distance.Cosine)},
                sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
                # one search thread: a query touches few segments, and a pool thread would only
                # compete with the embedder and the API for the machine's cores
                max_search_threads=1,
                # payloads in RAM: every search reads the prior of ~80 candidates and the full
                # payload of the winners; from disk that took 5 ms of a 7 ms query
                payload_memory=Memory.Cached,
            )
            self._shard = EdgeShard.create(str(self.path), config)
            self._shard.update(UpdateOperation.create_field_index("tenant", KeywordIndexParams(is_tenant=True)))
            for field in KEYWORD_FIELDS[1:]:
                self._shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))

    def _require(self) -> Any:
        if self._shard is None:
            raise RuntimeError(f"no index at {self.path}: run `tosei index` (or `make index`) first")
        return self._shard

    def upsert(self, points: Sequence[IndexedPoint]) -> None:
        from qdrant_edge import Point, UpdateOperation
        from qdrant_edge import SparseVector as EdgeSparse

        shard = self._require()
        batch = []
        for p in points:
            vector: dict[str, Any] = {SPARSE: EdgeSparse(indices=p.sparse.indices, values=p.sparse.values)}
            if p.dense is not None:
                vector[DENSE] = [float(x) for x in p.dense]
            batch.append(
                Point(id=point_id(p.document.tenant, p.document.id), vector=vector, payload=point_payload(p.document))
            )
        with self._lock:
            shard.update(UpdateOperation.upsert_points(batch))

    def delete(self, tenant: str, doc_ids: Sequence[str]) -> None:
        from qdrant_edge import UpdateOperation

        if doc_ids:
            with self._lock:
                self._require().update(UpdateOperation.delete_points([point_id(tenant, d) for d in doc_ids]))

    def flush(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.flush()

    def optimize(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.optimize()

    def _filter(self, filters: SearchFilters) -> Any:
        from qdrant_edge import FieldCondition, Filter, MatchAny, MatchValue

        must: list[Any] = [FieldCondition(key="tenant", match=MatchAny(any=filters.tenants()))]
        if filters.kinds:
            must.append(FieldCondition(key="kind", match=MatchAny(any=filters.kinds)))
        if filters.sources:
            must.append(FieldCondition(key="source", match=MatchAny(any=filters.sources)))
        if filters.language:
            must.append(FieldCondition(key="language", match=MatchValue(value=filters.language)))
        return Filter(must=must)

    def query(
        self,
        *,
        dense: npt.NDArray[np.float32] | None,
        sparse: SparseVector | None,
        filters: SearchFilters,
        limit: int,
        mode: SearchMode,
        prior_weight: float = 0.0,
        exact: bool = False,
    ) -> dict[str, list[Hit]]:
        from qdrant_edge import Query, QueryBatchRequest, QueryRequest, SearchParams
        from qdrant_edge import SparseVector as EdgeSparse

        shard = self._require()
        flt = self._filter(filters)
        dense_query = Query.Nearest([float(x) for x in dense], using=DENSE) if dense is not None else None
        sparse_query = (
            Query.Nearest(EdgeSparse(indices=sparse.indices, values=sparse.values), using=SPARSE)
            if sparse is not None and sparse.indices
            else None
        )
        selected = {
            name: q
            for name, q in (("dense", dense_query), ("sparse", sparse_query))
            if q is not None and mode in (name, "hybrid")
        }
        if not selected:
            return {mode: []}
        depth = max(limit * 4, 40)
        # each retriever alone, with ids, raw scores and the prior: fused below, and kept to
        # annotate the result for calibration
        names = list(selected)
        params = SearchParams(exact=True) if exact else None
        singles = [
            QueryRequest(
                limit=depth,
                query=selected[n],
                filter=flt,
                with_payload=["prior"],
                params=params if n == "dense" else None,
            )
            for n in names
        ]
        with self._lock:
            rows = shard.query_batch(QueryBatchRequest(singles))
            out = {
                name: [Hit(str(r.id), float(r.score), dict(r.payload or {})) for r in hits]
                for name, hits in zip(names, rows, strict=True)
            }
            fused = rrf_fuse(out, names, limit=limit, prior_weight=prior_weight)
            records = shard.retrieve([pid for pid, _ in fused], with_payload=True, with_vector=False)
        payloads = {str(r.id): dict(r.payload or {}) for r in records}
        out[mode] = [Hit(pid, score, payloads[pid]) for pid, score in fused if pid in payloads]
        return out

    def _scroll(self, flt: Any, fields: list[str]) -> Iterable[dict[str, Any]]:
        from qdrant_edge import ScrollRequest

        shard = self._require()
        offset = None
        while True:
            with self._lock:
                records, offset = shard.scroll(
                    ScrollRequest(offset=offset, limit=1000, filter=flt, with_payload=fields, with_vector=False)
                )
            for record in records:
                yield dict(record.payload or {})
            if offset is None:
                break

    def content_hashes(self, tenant: str, source: str | None = None) -> dict[str, str]:
        if self._shard is None:
            return {}
        flt = self._filter(SearchFilters(tenant=tenant, sources=[source] if source else None, include_shared=False))
        return {p["doc_id"]: p["content_hash"] for p in self._scroll(flt, ["doc_id", "content_hash"])}

    def count(self, tenant: str | None = None) -> int:
        from qdrant_edge import CountRequest

        if self._shard is None:
            return 0
        flt = self._filter(SearchFilters(tenant=tenant, include_shared=False)) if tenant else None
        with self._lock:
            return int(self._shard.count(CountRequest(filter=flt, exact=True)))

    def close(self) -> None:
        with self._lock:
            if self._shard is not None:
                self._shard.close()
                self._shard = None


# --------------------------------------------------------------------------------------------
# qdrant-client: a Qdrant server or cluster (or its local mode, which runs the same client calls)
# --------------------------------------------------------------------------------------------


class QdrantClientStore:
    def __init__(
        self,
        *,
        url: str | None = None,
        path: Path | None = None,
        api_key: str | None = None,
        collection: str = "tosei",
        shards: int = 1,
        replicas: int = 1,
    ) -> None:
        from qdrant_client import QdrantClient

        if url == ":memory:":
            self._client = QdrantClient(location=":memory:")
        elif url:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=30)
        elif path:
            self._client = QdrantClient(path=str(path))
        else:
            raise ValueError("QdrantClientStore needs TOSEI_QDRANT_URL or TOSEI_QDRANT_PATH")
        self._is_server = bool(url) and url != ":memory:"
        self.collection = collection
        self._shards = shards
        self._replicas = replicas

    def ensure_collection(self, dim: int) -> None:
        from qdrant_client import models

        if self._client.collection_exists(self.collection):
            return
        self._client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            # sharding and replication matter only on a cluster; local mode ignores them
            shard_number=self._shards if self._is_server else None,
            replication_factor=self._replicas if self._is_server else None,
        )
        if self._is_server:  # local mode has no payload indexes (it scans), a server needs them
            self._client.create_payload_index(
                self.collection,
                "tenant",
                models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            )
            for field in KEYWORD_FIELDS[1:]:
                self._client.create_payload_index(self.collection, field, models.PayloadSchemaType.KEYWORD)

    def upsert(self, points: Sequence[IndexedPoint]) -> None:
        from qdrant_client import models

        structs = []
        for p in points:
            vector: dict[str, Any] = {SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)}
            if p.dense is not None:
                vector[DENSE] = [float(x) for x in p.dense]
            structs.append(
                models.PointStruct(
                    id=point_id(p.document.tenant, p.document.id), vector=vector, payload=point_payload(p.document)
                )
            )
        self._client.upsert(self.collection, points=structs, wait=True)

    def delete(self, tenant: str, doc_ids: Sequence[str]) -> None:
        from qdrant_client import models

        if doc_ids:
            self._client.delete(
                self.collection, points_selector=models.PointIdsList(points=[point_id(tenant, d) for d in doc_ids])
            )

    def _filter(self, filters: SearchFilters) -> Any:
        from qdrant_client import models

        must: list[Any] = [models.FieldCondition(key="tenant", match=models.MatchAny(any=filters.tenants()))]
        if filters.kinds:
            must.append(models.FieldCondition(key="kind", match=models.MatchAny(any=filters.kinds)))
        if filters.sources:
            must.append(models.FieldCondition(key="source", match=models.MatchAny(any=filters.sources)))
        if filters.language:
            must.append(models.FieldCondition(key="language", match=models.MatchValue(value=filters.language)))
        return models.Filter(must=must)

    def query(
        self,
        *,
        dense: npt.NDArray[np.float32] | None,
        sparse: SparseVector | None,
        filters: SearchFilters,
        limit: int,
        mode: SearchMode,
        prior_weight: float = 0.0,
        exact: bool = False,
    ) -> dict[str, list[Hit]]:
        from qdrant_client import models

        flt = self._filter(filters)
        depth = max(limit * 4, 40)
        dense_q = [float(x) for x in dense] if dense is not None else None
        sparse_q = (
            models.SparseVector(indices=sparse.indices, values=sparse.values)
            if sparse is not None and sparse.indices
            else None
        )
        selected = {
            name: (q, using)
            for name, q, using in (("dense", dense_q, DENSE), ("sparse", sparse_q, SPARSE))
            if q is not None and mode in (name, "hybrid")
        }
        if not selected:
            return {mode: []}
        names = list(selected)
        singles = [
            models.QueryRequest(
                query=q,
                using=using,
                filter=flt,
                limit=depth,
                with_payload=["prior"],
                params=models.SearchParams(exact=True) if exact and using == DENSE else None,
            )
            for q, using in selected.values()
        ]
        responses = self._client.query_batch_points(self.collection, requests=singles)
        out = {
            name: [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in resp.points]
            for name, resp in zip(names, responses, strict=True)
        }
        fused = rrf_fuse(out, names, limit=limit, prior_weight=prior_weight)
        records = self._client.retrieve(
            self.collection, ids=[pid for pid, _ in fused], with_payload=True, with_vectors=False
        )
        payloads = {str(r.id): dict(r.payload or {}) for r in records}
        out[mode] = [Hit(pid, score, payloads[pid]) for pid, score in fused if pid in payloads]
        return out

    def content_hashes(self, tenant: str, source: str | None = None) -> dict[str, str]:
        if not self._client.collection_exists(self.collection):
            return {}
        flt = self._filter(SearchFilters(tenant=tenant, sources=[source] if source else None, include_shared=False))
        out: dict[str, str] = {}
        offset = None
        while True:
            records, offset = self._client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=1000,
                offset=offset,
                with_payload=["doc_id", "content_hash"],
                with_vectors=False,
            )
            for r in records:
                payload = r.payload or {}
                out[payload["doc_id"]] = payload["content_hash"]
            if offset is None:
                break
        return out

    def count(self, tenant: str | None = None) -> int:
        if not self._client.collection_exists(self.collection):
            return 0
        flt = self._filter(SearchFilters(tenant=tenant, include_shared=False)) if tenant else None
        return int(self._client.count(self.collection, count_filter=flt, exact=True).count)

    def flush(self) -> None:
        """Server writes are durable on acknowledgement (``wait=True``)."""

    def optimize(self) -> None:
        """A server optimizes segments in the background."""

    def close(self) -> None:
        self._client.close()
