"""The same behaviour from both stores: Qdrant Edge (embedded) and qdrant-client (local mode runs the
same client calls a Qdrant server or cluster gets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval._types import SHARED_TENANT, Document, SearchFilters
from retrieval.embedding_cache import EmbeddingCache
from retrieval.index import Indexer, Searcher
from retrieval.sparse import CharBigramTokenizer, SparseEncoder
from retrieval.stores import EdgeStore, QdrantClientStore, VectorStore
from retrieval.testing import HashEmbedder

DOCS = [
    Document(
        id="p1",
        tenant=SHARED_TENANT,
        kind="procedure",
        source="procs",
        title="戸籍の届出（出生）",
        text="手続名: 戸籍の届出（出生）\n提出先: 市役所・町村役場",
    ),
    Document(
        id="p2",
        tenant=SHARED_TENANT,
        kind="procedure",
        source="procs",
        title="児童手当の認定の請求",
        text="手続名: 児童手当の認定の請求\nライフイベント: 出生・こども",
    ),
    Document(
        id="p3",
        tenant=SHARED_TENANT,
        kind="procedure",
        source="procs",
        title="一般旅券の発給の申請",
        text="手続名: 一般旅券の発給の申請\n提出先: 都道府県庁",
    ),
    Document(
        id="g1",
        tenant="cityA",
        kind="garbage",
        source="garbage",
        title="フライパン（ごみの分別）",
        text="品目: フライパン\n分別区分: 燃やさないごみ",
    ),
    Document(
        id="g2",
        tenant="cityB",
        kind="garbage",
        source="garbage",
        title="フライパン（ごみの分別）",
        text="品目: フライパン\n分別区分: 金属ごみ",
        language="ja",
    ),
    Document(
        id="e1",
        tenant="cityA",
        kind="document",
        source="guide",
        title="Passport guide",
        text="Apply for a passport at the prefectural office.",
        language="en",
    ),
]


@pytest.fixture(params=["edge", "qdrant-local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s: VectorStore = EdgeStore(tmp_path / "edge") if request.param == "edge" else QdrantClientStore(path=tmp_path / "q")
    yield s
    s.close()


@pytest.fixture
def searcher(store: VectorStore, tmp_path: Path) -> Searcher:
    embedder = HashEmbedder()
    sparse = SparseEncoder(CharBigramTokenizer(), avg_len=20)
    indexer = Indexer(store, embedder, sparse, EmbeddingCache(tmp_path / "cache.npz"))
    for tenant in (SHARED_TENANT, "cityA", "cityB"):
        indexer.sync([d for d in DOCS if d.tenant == tenant], tenant=tenant)
    return Searcher(store, embedder, sparse)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_each_mode_finds_the_matching_document(searcher: Searcher, mode: str) -> None:
    hits = searcher.search("出生の届出", SearchFilters(tenant="cityA"), k=3, mode=mode)  # type: ignore[arg-type]
    assert hits[0].id == "p1"
    assert hits[0].payload == {}  # payload dict round-trips (empty here)
    assert hits[0].title == "戸籍の届出（出生）"


def test_hybrid_reports_each_retrievers_rank(searcher: Searcher) -> None:
    hit = searcher.search("出生の届出", SearchFilters(tenant="cityA"), k=3)[0]
    assert hit.ranks["dense"] >= 1 and hit.ranks["sparse"] >= 1
    assert 0 < hit.raw_scores["dense"] <= 1.0001


def test_tenants_see_shared_and_own_documents_only(searcher: Searcher) -> None:
    a = {p.id for p in searcher.search("フライパン", SearchFilters(tenant="cityA"), k=10)}
    b = {p.id for p in searcher.search("フライパン", SearchFilters(tenant="cityB"), k=10)}
    assert "g1" in a and "g2" not in a
    assert "g2" in b and "g1" not in b
    only_own = searcher.search("出生", SearchFilters(tenant="cityA", include_shared=False), k=10)
    assert all(p.tenant == "cityA" for p in only_own)


def test_kind_source_and_language_filters(searcher: Searcher) -> None:
    kinds = searcher.search("フライパン 出生", SearchFilters(tenant="cityA", kinds=["procedure"]), k=10)
    assert kinds and all(p.kind == "procedure" for p in kinds)
    sources = searcher.search("passport", SearchFilters(tenant="cityA", sources=["guide"]), k=10)
    assert [p.id for p in sources] == ["e1"]
    english = searcher.search("passport 旅券", SearchFilters(tenant="cityA", language="en"), k=10)
    assert [p.id for p in english] == ["e1"]


def test_incremental_sync_writes_only_changes(store: VectorStore, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    indexer = Indexer(store, embedder, SparseEncoder(CharBigramTokenizer()), EmbeddingCache(tmp_path / "c.npz"))
    procs = [d for d in DOCS if d.tenant == SHARED_TENANT]
    first = indexer.sync(procs, tenant=SHARED_TENANT, source="procs")
    assert (first.added, first.unchanged, first.embedded) == (3, 0, 3)
    again = indexer.sync(procs, tenant=SHARED_TENANT, source="procs")
    assert (again.added, again.updated, again.unchanged, again.deleted, again.embedded) == (0, 0, 3, 0, 0)
    changed = [procs[0].model_copy(update={"text": procs[0].text + "\n手数料: 無し"}), procs[1]]
    third = indexer.sync(changed, tenant=SHARED_TENANT, source="procs")
    assert (third.updated, third.unchanged, third.deleted) == (1, 1, 1)
    assert store.count(SHARED_TENANT) == 2
    assert set(store.content_hashes(SHARED_TENANT, "procs")) == {"p1", "p2"}


def test_duplicate_texts_are_indexed_once(store: VectorStore, tmp_path: Path) -> None:
    indexer = Indexer(store, HashEmbedder(), SparseEncoder(CharBigramTokenizer()), EmbeddingCache(None))
    twin = DOCS[0].model_copy(update={"id": "p1-copy"})
    report = indexer.sync([DOCS[0], twin], tenant=SHARED_TENANT)
    assert (report.added, report.duplicates) == (1, 1)


def test_a_document_of_another_tenant_is_refused(store: VectorStore) -> None:
    indexer = Indexer(store, HashEmbedder(), SparseEncoder(CharBigramTokenizer()), EmbeddingCache(None))
    with pytest.raises(ValueError, match="belongs to tenant"):
        indexer.sync([DOCS[3]], tenant="cityB")


def test_edge_index_persists_across_reopen(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "edge")
    indexer = Indexer(store, HashEmbedder(), SparseEncoder(CharBigramTokenizer()), EmbeddingCache(None))
    indexer.sync(DOCS[:3], tenant=SHARED_TENANT)
    store.close()
    reopened = EdgeStore(tmp_path / "edge")
    assert reopened.count() == 3
    hits = Searcher(reopened, HashEmbedder(), SparseEncoder(CharBigramTokenizer())).search(
        "旅券", SearchFilters(tenant="x"), k=1
    )
    assert hits[0].id == "p3"
    reopened.close()


def test_searching_without_an_index_says_how_to_build_one(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "missing")
    with pytest.raises(RuntimeError, match="tosei index"):
        Searcher(store, HashEmbedder(), SparseEncoder(CharBigramTokenizer())).search("x", SearchFilters(tenant="a"))


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_the_usage_prior_breaks_ties_after_fusion(store: VectorStore, tmp_path: Path, mode: str) -> None:
    """Two procedures matching a question equally: the one people file more often comes first."""
    twins = [
        Document(
            id=f"t{i}",
            tenant=SHARED_TENANT,
            kind="procedure",
            source="s",
            title="旅券の申請",
            text=f"手続名: 旅券の申請\n提出先: {office}",
            prior=prior,
        )
        for i, (office, prior) in enumerate([("本府省庁", 0.0), ("都道府県庁", 0.9)])
    ]
    embedder = HashEmbedder()
    sparse = SparseEncoder(CharBigramTokenizer())
    Indexer(store, embedder, sparse, EmbeddingCache(None)).sync(twins, tenant=SHARED_TENANT)
    plain = Searcher(store, embedder, sparse).search("旅券の申請", SearchFilters(tenant="a"), k=2, mode=mode)  # type: ignore[arg-type]
    boosted = Searcher(store, embedder, sparse, prior_weight=0.3).search(
        "旅券の申請",
        SearchFilters(tenant="a"),
        k=2,
        mode=mode,  # type: ignore[arg-type]
    )
    assert {p.id for p in plain} == {"t0", "t1"}
    assert [p.id for p in boosted] == ["t1", "t0"]
    assert boosted[0].score > boosted[1].score


def test_repeated_questions_reuse_their_query_vector(store: VectorStore, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    sparse = SparseEncoder(CharBigramTokenizer())
    Indexer(store, embedder, sparse, EmbeddingCache(None)).sync(DOCS[:3], tenant=SHARED_TENANT)
    searcher = Searcher(store, embedder, sparse, query_cache_size=2)
    calls = embedder.calls
    first = searcher.search("出生の届出", SearchFilters(tenant="a"))
    again = searcher.search("出生の届出", SearchFilters(tenant="a"))
    assert embedder.calls == calls + 1 and [p.id for p in first] == [p.id for p in again]
    searcher.search("旅券", SearchFilters(tenant="a"))
    searcher.search("婚姻", SearchFilters(tenant="a"))  # evicts the oldest entry
    searcher.search("出生の届出", SearchFilters(tenant="a"))
    assert embedder.calls == calls + 4


def test_a_shard_held_by_another_opener_is_a_clear_error(tmp_path: Path) -> None:
    from retrieval.stores import IndexBusy

    first = EdgeStore(tmp_path / "edge")
    first.ensure_collection(4)
    first.flush()
    with pytest.raises(IndexBusy, match="open in another process"):
        EdgeStore(tmp_path / "edge")
    first.close()
    EdgeStore(tmp_path / "edge").close()  # free again once the holder closes it


# qdrant-client's local mode always scans, and says so; the server honours the parameter
@pytest.mark.filterwarnings("ignore:Local mode performs exact")
def test_exact_dense_search_agrees_with_the_graph_on_a_small_index(store: VectorStore, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    sparse = SparseEncoder(CharBigramTokenizer())
    Indexer(store, embedder, sparse, EmbeddingCache(None)).sync(DOCS[:3], tenant=SHARED_TENANT)
    graph = Searcher(store, embedder, sparse).search("旅券の申請", SearchFilters(tenant="a"), k=3, mode="dense")
    exact = Searcher(store, embedder, sparse, exact=True).search(
        "旅券の申請", SearchFilters(tenant="a"), k=3, mode="dense"
    )
    assert [p.id for p in exact] == [p.id for p in graph]
    assert exact[0].score == pytest.approx(graph[0].score, abs=1e-4)
