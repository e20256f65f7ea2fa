"""The shipped corpus: which files in ``data/`` become which tenant's documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from connectors.garbage import garbage_documents
from connectors.procedures import procedure_documents
from retrieval._types import SHARED_TENANT, Document

PROCEDURES_FILE = Path("procedures/procedures_data_R7-0729.parquet")
GARBAGE_FILE = Path("garbage_hakodate/target.csv")
SHIPPED_CACHE_FILE = Path("embeddings/shipped-corpus.npz")

#: the first tenant: a city reading the shared national procedures plus its own content
FIRST_TENANT = "hakodate"


def shipped_documents(data_dir: Path) -> Iterator[Document]:
    """National procedures (shared by every tenant) and Hakodate's garbage sorting items."""
    yield from procedure_documents(data_dir / PROCEDURES_FILE, tenant=SHARED_TENANT)
    yield from garbage_documents(data_dir / GARBAGE_FILE, tenant=FIRST_TENANT)
