"""Small types that travel between ingestion, the stores and the answering pipeline."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

Language = Literal["ja", "en"]

#: Tenant id of content every tenant may read (national procedures: the 共同化 part).
SHARED_TENANT = "_shared"


def content_hash(text: str) -> str:
    """Stable id of a piece of text: sha256 hex of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Content(BaseModel):
    """What a document and a search hit both carry."""

    id: str
    tenant: str
    kind: str
    source: str
    title: str
    text: str
    url: str | None = None
    language: Language = "ja"
    payload: dict[str, Any] = Field(default_factory=dict)


class Document(_Content):
    """One retrievable unit: a procedure row, a garbage item, or a chunk of an ingested file.

    ``text`` is what a citizen reads and what the sparse index sees; ``embed_text`` is the
    compact form that is embedded densely (embedding cost grows with length, so structured
    rows embed only the fields that carry meaning for a question).
    """

    embed_text: str = ""
    #: query-independent prior in [0, 1] (how often the procedure is used), added to hybrid scores
    prior: float = Field(default=0.0, ge=0.0, le=1.0)

    @property
    def dense_text(self) -> str:
        return self.embed_text or f"{self.title}\n{self.text}"

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that is indexed changes (incremental re-ingest key)."""
        return content_hash(
            "\x1f".join(
                [self.title, self.text, self.dense_text, self.kind, self.source, self.url or "", f"{self.prior:.4f}"]
            )
        )


class Passage(_Content):
    """A search hit: a document plus its score and the retrievers that found it."""

    score: float
    #: rank of this passage in each single retriever (1-based), for calibration and debugging
    ranks: dict[str, int] = Field(default_factory=dict)
    #: raw score of each single retriever (dense: cosine)
    raw_scores: dict[str, float] = Field(default_factory=dict)


class SearchFilters(BaseModel):
    """Payload filters every store understands. ``tenant`` also admits the shared tenant."""

    tenant: str
    kinds: list[str] | None = None
    sources: list[str] | None = None
    language: Language | None = None
    include_shared: bool = True

    def tenants(self) -> list[str]:
        return [self.tenant, SHARED_TENANT] if self.include_shared else [self.tenant]
