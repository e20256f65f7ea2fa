"""Offline stand-ins for tests (like pydantic-ai's TestModel): deterministic, instant, no weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.embedders import Vectors
from retrieval.sparse import CharBigramTokenizer, term_id


class HashEmbedder:
    """Hashed character-bigram bag, L2-normalized: texts sharing words get similar vectors.

    Good enough to exercise every code path of indexing and hybrid search in milliseconds;
    retrieval quality is measured with the real model in ``benchmarks/``.
    """

    def __init__(self, dim: int = 64, model_id: str = "hash-test") -> None:
        self.dim = dim
        self.model_id = model_id
        self._tokenizer = CharBigramTokenizer()
        self.calls = 0

    def _embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in self._tokenizer.terms(text):
                if term.startswith(("b:", "w:")):
                    h = term_id(term)
                    out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalized: Vectors = (out / norms).astype(np.float32)
        return normalized

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)
