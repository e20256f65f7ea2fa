"""Shared pytest setup: the project root on sys.path and the project's markers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# test dirs have no __init__.py (rootdir conftest layout), so make the project importable
# even when pytest is run without PYTHONPATH=.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from collections.abc import Iterator  # noqa: E402

from assistant.confidence import Calibration  # noqa: E402
from assistant.pipeline import Pipeline  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from connectors.garbage import garbage_documents  # noqa: E402
from connectors.procedures import procedure_documents  # noqa: E402
from retrieval._types import SHARED_TENANT  # noqa: E402
from retrieval.testing import HashEmbedder  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llm: runs a real local LLM server (llama.cpp + Gemma 3 270M GGUF); slow")


# --- a small real index (Qdrant Edge, shipped rows, hash embedder) behind a real Pipeline ---

DATA = PROJECT_ROOT / "data"
PROCEDURE_IDS = {"proc-13165", "proc-13183"}  # 戸籍の届出（出生）, 戸籍の届出（婚姻）


@pytest.fixture(scope="session")
def small_corpus() -> dict[str, list]:  # type: ignore[type-arg]
    procedures = [
        d
        for d in procedure_documents(DATA / "procedures/procedures_data_R7-0729.parquet")
        if d.id in PROCEDURE_IDS or "旅券" in d.title or "児童手当" in d.title
    ]
    garbage = [d for d in garbage_documents(DATA / "garbage_hakodate/target.csv") if d.payload["item"][:1] in "フテア"]
    return {"procedures": procedures, "garbage": garbage}


@pytest.fixture
def services(tmp_path: Path, small_corpus: dict[str, list]) -> Iterator[Services]:  # type: ignore[type-arg]
    settings = Settings(data_dir=DATA, var_dir=tmp_path / "var")
    svc = Services(settings=settings, _overrides={"embedder": HashEmbedder(), "llm": None})
    indexer = svc.indexer()
    indexer.sync(small_corpus["procedures"], tenant=SHARED_TENANT)
    indexer.sync(small_corpus["garbage"], tenant="hakodate")
    yield svc
    svc.close()


#: the hash embedder's cosines are lower than e5's: a calibration for it
HASH_CALIBRATION = Calibration(weights={"dense_top": 12.0, "coverage": 6.0}, bias=-7.0, threshold=0.5)


@pytest.fixture
def hash_calibration() -> Calibration:
    return HASH_CALIBRATION


@pytest.fixture
def pipeline(services: Services) -> Pipeline:
    return Pipeline(services, calibration=HASH_CALIBRATION)
