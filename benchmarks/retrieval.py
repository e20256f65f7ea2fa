"""Retrieval quality: hit@1, hit@5 and MRR@10 of sparse-only, dense-only and hybrid (RRF) in one run.

Two dev sets:
- ``own``: hand-written citizen questions over the shipped corpus (benchmarks/devset/questions.jsonl),
  searched in the shipped index (run ``tosei index`` first); the thesaurus and the fusion settings
  were tuned on it;
- ``heldout``: a second set written blind, without the thesaurus or the dev set
  (benchmarks/heldout/questions.jsonl): the honest estimate for new questions;
- ``jsquad``: 500 JSQuAD-valid questions against all 1,145 of its Wikipedia paragraphs, indexed
  into a separate embedded store under var/bench/ (embeddings cached, so reruns are fast).

    python benchmarks/retrieval.py [--json] [--jsquad-n 500]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.services import Services  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from retrieval._types import Document, SearchFilters  # noqa: E402
from retrieval.embedding_cache import EmbeddingCache  # noqa: E402
from retrieval.index import Indexer, Searcher, sparse_avg_len  # noqa: E402
from retrieval.sparse import SparseEncoder, get_tokenizer  # noqa: E402
from retrieval.stores import EdgeStore, SearchMode  # noqa: E402

MODES: tuple[SearchMode, ...] = ("sparse", "dense", "hybrid")


def metrics(ranked: list[list[str]], relevant: list[set[str]]) -> dict[str, float]:
    hit1 = hit5 = mrr = 0.0
    for ids, rel in zip(ranked, relevant, strict=True):
        if ids[:1] and ids[0] in rel:
            hit1 += 1
        if any(i in rel for i in ids[:5]):
            hit5 += 1
        for rank, i in enumerate(ids[:10], start=1):
            if i in rel:
                mrr += 1 / rank
                break
    n = max(len(ranked), 1)
    return {"hit@1": hit1 / n, "hit@5": hit5 / n, "mrr@10": mrr / n, "n": len(ranked)}


def evaluate(searcher: Searcher, questions: list[dict[str, Any]], tenant_key: str = "tenant") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        started = time.perf_counter()
        ranked = [
            [p.id for p in searcher.search(q["question"], SearchFilters(tenant=q[tenant_key]), k=10, mode=mode)]
            for q in questions
        ]
        result = metrics(ranked, [set(q["relevant"]) for q in questions])
        result["ms_per_query"] = (time.perf_counter() - started) * 1000 / max(len(questions), 1)
        out[mode] = result
    return out


def own_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def jsquad(services: Services, n: int, seed: int = 7) -> tuple[Searcher, list[dict[str, Any]]]:
    raw = json.loads((services.settings.data_dir / "rag_eval/jsquad-valid-v1.3.json").read_text(encoding="utf-8"))
    docs: list[Document] = []
    questions: list[dict[str, Any]] = []
    for article in raw["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            # contexts look like "梅雨 [SEP] 梅雨（つゆ…": the part before [SEP] is the article title
            title, _, body = paragraph["context"].partition(" [SEP] ")
            doc_id = f"jsquad-{article['title']}-{number}"
            docs.append(
                Document(id=doc_id, tenant="jsquad", kind="document", source="jsquad", title=title, text=body or title)
            )
            for qa in paragraph["qas"]:
                questions.append({"question": qa["question"], "relevant": [doc_id], "tenant": "jsquad"})
    random.Random(seed).shuffle(questions)
    bench_dir = services.settings.var_dir / "bench" / "jsquad-edge"
    shutil.rmtree(bench_dir, ignore_errors=True)
    store = EdgeStore(bench_dir)
    sparse = SparseEncoder(get_tokenizer(services.settings.sparse_tokenizer))
    sparse.avg_len = sparse_avg_len(sparse, docs)
    cache = EmbeddingCache(services.settings.var_dir / "embeddings" / "bench-jsquad.npz")
    Indexer(store, services.embedder, sparse, cache).sync(docs, tenant="jsquad", progress=True)
    return Searcher(store, services.embedder, sparse), questions[:n]


def table(name: str, result: dict[str, Any]) -> str:
    lines = [
        f"\n{name} (n={result['sparse']['n']})",
        f"{'retriever':<10}{'hit@1':>8}{'hit@5':>8}{'MRR@10':>9}{'ms/q':>8}",
    ]
    for mode in MODES:
        r = result[mode]
        lines.append(f"{mode:<10}{r['hit@1']:>8.3f}{r['hit@5']:>8.3f}{r['mrr@10']:>9.3f}{r['ms_per_query']:>8.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--jsquad-n", type=int, default=500)
    parser.add_argument("--skip-jsquad", action="store_true")
    args = parser.parse_args()

    # no query-vector cache: every mode embeds every question, so ms/q is comparable
    services = Services(settings=Settings(query_cache_size=0))
    results: dict[str, Any] = {}
    own = own_questions(ROOT / "benchmarks/devset/questions.jsonl")
    results["own"] = evaluate(services.searcher, own)
    results["own_by_language"] = {
        lang: evaluate(services.searcher, [q for q in own if q["language"] == lang]) for lang in ("ja", "en")
    }
    # written blind (without the thesaurus or the dev set): how the tuning generalizes
    heldout = own_questions(ROOT / "benchmarks/heldout/questions.jsonl")
    results["heldout"] = evaluate(services.searcher, heldout)
    results["heldout_by_language"] = {
        lang: evaluate(services.searcher, [q for q in heldout if q["language"] == lang]) for lang in ("ja", "en")
    }
    if not args.skip_jsquad:
        searcher, questions = jsquad(services, args.jsquad_n)
        results["jsquad"] = evaluate(searcher, questions)
        searcher.store.close()
    services.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(table("own dev set: citizen questions over the shipped corpus", results["own"]))
    for lang, r in results["own_by_language"].items():
        print(table(f"  own dev set, {lang} only", r))
    print(table("held-out set: written blind, never used for tuning", results["heldout"]))
    for lang, r in results["heldout_by_language"].items():
        print(table(f"  held-out set, {lang} only", r))
    if "jsquad" in results:
        print(table("JSQuAD valid: questions against all 1,145 paragraphs", results["jsquad"]))


if __name__ == "__main__":
    main()
