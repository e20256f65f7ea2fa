from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.embedding_cache import EmbeddingCache, cache_key
from retrieval.testing import HashEmbedder


def test_vectors_are_embedded_once_and_read_back(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    cache = EmbeddingCache(tmp_path / "c.npz")
    first = cache.embed_passages(embedder, ["出生届", "婚姻届", "出生届"])
    assert first.shape == (3, embedder.dim)
    assert np.allclose(first[0], first[2])
    calls = embedder.calls
    reopened = EmbeddingCache(tmp_path / "c.npz")
    again = reopened.embed_passages(embedder, ["婚姻届", "出生届"])
    assert embedder.calls == calls  # nothing re-embedded
    assert np.allclose(again[1], first[0], atol=1e-3)  # float16 storage


def test_changed_text_or_model_gets_a_new_key(tmp_path: Path) -> None:
    assert cache_key("m1", "a") != cache_key("m1", "b")
    assert cache_key("m1", "a") != cache_key("m2", "a")
    cache = EmbeddingCache(tmp_path / "c.npz")
    cache.embed_passages(HashEmbedder(model_id="m1"), ["出生届"])
    other = HashEmbedder(model_id="m2")
    cache.embed_passages(other, ["出生届"])
    assert other.calls == 1


def test_read_only_layer_and_selected_save(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    seed = EmbeddingCache(tmp_path / "seed.npz")
    seed.embed_passages(embedder, ["a", "b", "c"])
    shipped = tmp_path / "shipped.npz"
    assert seed.save(shipped, keys=[cache_key(embedder.model_id, t) for t in ["a", "b"]]) == 2
    layered = EmbeddingCache(tmp_path / "var.npz", read_only=[shipped])
    assert len(layered) == 2
    layered.embed_passages(embedder, ["a", "d"])
    assert len(EmbeddingCache(shipped)) == 2  # the shipped layer is never written
    assert len(EmbeddingCache(tmp_path / "var.npz")) == 1  # only the new vector: the shipped ones stay shipped
    assert len(EmbeddingCache(tmp_path / "var.npz", read_only=[shipped])) == 3


def test_interrupted_build_keeps_checkpointed_vectors(tmp_path: Path) -> None:
    class Flaky(HashEmbedder):
        def embed_passages(self, texts):  # type: ignore[no-untyped-def]
            if self.calls >= 2:
                raise KeyboardInterrupt
            return super().embed_passages(texts)

    cache = EmbeddingCache(tmp_path / "c.npz")
    with pytest.raises(KeyboardInterrupt):
        cache.embed_passages(Flaky(), [f"t{i}" for i in range(10)], batch_size=2, checkpoint_every=1)
    assert len(EmbeddingCache(tmp_path / "c.npz")) == 4  # two batches were saved before the stop


def test_corrupt_cache_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RuntimeError, match="delete it to rebuild"):
        EmbeddingCache(bad)


def test_the_writable_layer_holds_only_new_vectors_even_of_another_model(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.npz"
    big = HashEmbedder(dim=32, model_id="big")
    seed = EmbeddingCache(None)
    seed.embed_passages(big, ["a", "b"])
    seed.save(shipped)
    layered = EmbeddingCache(tmp_path / "var.npz", read_only=[shipped])
    layered.embed_passages(HashEmbedder(dim=8, model_id="small"), ["c"])  # another dim: no clash
    assert len(EmbeddingCache(tmp_path / "var.npz")) == 1
