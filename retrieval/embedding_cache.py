"""Embedding cache keyed by (model id, text) content hash.

Embedding is the expensive step of indexing (minutes per ten thousand passages on this CPU), so
every vector is stored once under ``sha256(model_id, text)``: a changed text or a different model
gets a new key and is re-embedded, everything else is read back. The shipped cache in ``data/``
is read-only; new vectors go to the writable cache under ``var/``. Files are ``.npz`` with
``keys`` (N x 32 bytes) and ``vectors`` (N x dim, float16: half the size, recall unchanged at
cosine precision this model has).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retrieval.embedders import Embedder, Vectors


def cache_key(model_id: str, text: str) -> bytes:
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).digest()


class EmbeddingCache:
    def __init__(self, writable: Path | None, *, read_only: Sequence[Path] = ()) -> None:
        self.writable = writable
        self._vectors: dict[bytes, np.ndarray] = {}
        self._dirty: dict[bytes, np.ndarray] = {}
        for path in read_only:
            if path.exists():
                self._load(path)
        #: vectors of the read-only layers are never written again to the writable file
        self._read_only = set(self._vectors)
        if writable is not None and writable.exists():
            self._load(writable)

    def _load(self, path: Path) -> None:
        try:
            with np.load(path) as archive:
                keys = archive["keys"]
                vectors = archive["vectors"]
        except (OSError, KeyError, ValueError) as exc:
            raise RuntimeError(f"embedding cache {path} is unreadable ({exc}); delete it to rebuild") from exc
        for key, vector in zip(keys, vectors, strict=True):
            self._vectors[bytes(key)] = vector

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: bytes) -> np.ndarray | None:
        return self._vectors.get(key)

    def put(self, key: bytes, vector: np.ndarray) -> None:
        half = np.asarray(vector, dtype=np.float16)
        self._vectors[key] = half
        self._dirty[key] = half

    def save(self, path: Path | None = None, *, keys: Sequence[bytes] | None = None) -> int:
        """Write ``keys`` atomically to ``path`` (default: every vector not in a read-only layer, to
        the writable file)."""
        target = path or self.writable
        if target is None:
            raise ValueError("no writable embedding cache configured")
        selected = list(keys) if keys is not None else [k for k in self._vectors if k not in self._read_only]
        selected = [k for k in selected if k in self._vectors]
        target.parent.mkdir(parents=True, exist_ok=True)
        key_array = np.frombuffer(b"".join(selected), dtype=np.uint8).reshape(len(selected), 32)
        vectors = (
            np.stack([self._vectors[k] for k in selected]).astype(np.float16)
            if selected
            else np.zeros((0, 0), dtype=np.float16)
        )
        # write next to the target, then rename: a crash never leaves a half-written cache
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".npz.tmp")
        os.close(fd)
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=key_array, vectors=vectors)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shipped and shared
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if path is None:
            self._dirty.clear()
        return len(selected)

    def flush(self) -> None:
        if self._dirty and self.writable is not None:
            self.save()

    def embed_passages(
        self,
        embedder: Embedder,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: bool = False,
        description: str = "embedding",
        checkpoint_every: int = 50,
        on_batch: Callable[[int], None] | None = None,
    ) -> Vectors:
        """Vectors for ``texts``: cached ones read back, the rest embedded in batches and cached.

        Saves every ``checkpoint_every`` batches so an interrupted build resumes where it stopped.
        """
        keys = [cache_key(embedder.model_id, t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._vectors]
        # embed each distinct text once even if several documents share it
        unique: dict[bytes, int] = {}
        for i in missing:
            unique.setdefault(keys[i], i)
        todo = list(unique.values())
        with tqdm(total=len(todo), desc=description, unit="passage", disable=not progress or not todo) as bar:
            for number, start in enumerate(range(0, len(todo), batch_size), start=1):
                batch = todo[start : start + batch_size]
                vectors = embedder.embed_passages([texts[i] for i in batch])
                for i, vector in zip(batch, vectors, strict=True):
                    self.put(keys[i], vector)
                bar.update(len(batch))
                if on_batch is not None:
                    on_batch(len(batch))
                if self.writable is not None and number % checkpoint_every == 0:
                    self.save()
        self.flush()
        if not keys:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)
