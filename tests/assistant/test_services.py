"""Settings alone choose each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.llm import OpenAICompatibleLLM
from assistant.services import IndexMismatch, Services, make_embedder, make_llm, make_store
from assistant.settings import Settings
from retrieval.embedders import OpenAIEmbedder
from retrieval.index import IndexMeta
from retrieval.stores import EdgeStore, QdrantClientStore
from retrieval.testing import HashEmbedder


def test_no_llm_url_means_extractive_answers() -> None:
    assert make_llm(Settings(llm_base_url=None)) is None
    assert make_llm(Settings(llm_base_url="")) is None


def test_an_llm_url_selects_the_openai_compatible_provider() -> None:
    llm = make_llm(
        Settings(llm_base_url="http://127.0.0.1:8080/v1", llm_model="gemma3", llm_timeout=7.0, llm_max_retries=0)
    )
    assert isinstance(llm, OpenAICompatibleLLM)
    assert (llm.model_id, llm.base_url, llm.timeout, llm.max_retries) == ("gemma3", "http://127.0.0.1:8080/v1", 7.0, 0)


def test_store_choice(tmp_path: Path) -> None:
    edge = make_store(Settings(var_dir=tmp_path))
    assert isinstance(edge, EdgeStore) and edge.path == tmp_path / "index" / "edge"
    local = make_store(Settings(store="qdrant", qdrant_url=":memory:"))
    assert isinstance(local, QdrantClientStore)
    local.close()


def test_embedder_choice_and_clear_errors() -> None:
    remote = make_embedder(Settings(embedder="openai", embedder_base_url="http://127.0.0.1:1/v1", embedder_dim=1024))
    assert isinstance(remote, OpenAIEmbedder) and remote.dim == 1024
    with pytest.raises(ValueError, match="EMBEDDER_BASE_URL"):
        make_embedder(Settings(embedder="openai"))
    with pytest.raises(ValueError, match="EMBEDDER_PATH"):
        make_embedder(Settings(embedder="transformers"))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOSEI_STORE", "qdrant")
    monkeypatch.setenv("TOSEI_PRIOR_WEIGHT", "0")
    settings = Settings()
    assert settings.store == "qdrant" and settings.prior_weight == 0


def test_an_index_made_by_another_embedder_is_refused(tmp_path: Path) -> None:
    services = Services(settings=Settings(var_dir=tmp_path), _overrides={"embedder": HashEmbedder()})
    IndexMeta(embedder="someone-else", dim=64, sparse_tokenizer="char", avg_len=10).write(services.meta_path)
    with pytest.raises(IndexMismatch, match="tosei index --rebuild"):
        services.check_index()
