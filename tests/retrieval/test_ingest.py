"""retrieval.ingest: files to Documents (readers, Japanese chunking, ids) and incremental ingest."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assistant.services import Services
from assistant.settings import Settings
from retrieval._types import Document, SearchFilters
from retrieval.embedding_cache import EmbeddingCache
from retrieval.index import Indexer, IndexMeta, Searcher
from retrieval.ingest import (
    CHUNK_CHARS,
    CHUNK_OVERLAP,
    IngestResult,
    decode_text,
    default_source,
    documents_from_path,
    ingest,
    make_splitter,
)
from retrieval.sparse import CharBigramTokenizer, SparseEncoder
from retrieval.stores import EdgeStore
from retrieval.testing import HashEmbedder

TENANT = "hakodate"

MARKDOWN = """\
# 住民票の写しの交付

住民票の写しは市役所の窓口で請求できます。

## 手続

### 必要書類

本人確認書類（マイナンバーカード、運転免許証など）が必要です。代理人の場合は委任状も必要です。

### 手数料

1通300円です。

## 問い合わせ

市民課（電話 0138-21-3180）までお問い合わせください。詳しくは[市のページ](https://example.jp/juminhyo)をご覧ください。

```
# これは見出しではありません
```
"""

HTML = """\
<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>ごみの出し方</title>
<style>body { color: red; }</style>
<script>var tracking = "SECRET_SCRIPT_TEXT";</script></head>
<body>
<nav>トップ | サイトマップ</nav>
<main>
<h1>燃やせるごみ</h1>
<p>燃やせるごみは
  週2回、朝8時までに出してください。</p>
<!-- hidden comment text -->
<ul><li>生ごみ</li><li>紙くず</li></ul>
<script>document.write("ALSO_SCRIPT")</script>
</main>
<footer>函館市役所</footer>
</body></html>
"""

CSV_ROWS = [
    ["手続名", "担当課", "手数料"],
    ["住民票の写し", "市民課", "300円"],
    ["", "", ""],
    ["印鑑登録証明書", "市民課", "300円"],
]


def make_pdf(pages: Sequence[str]) -> bytes:
    """A minimal valid PDF (Helvetica text, one string per page) with a correct xref table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def write_csv(path: Path, rows: Sequence[Sequence[str]], encoding: str) -> None:
    path.write_bytes("\r\n".join(",".join(row) for row in rows).encode(encoding) + b"\r\n")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "guides" / "juminhyo.md").write_text(MARKDOWN, encoding="utf-8")
    (root / "gomi.html").write_text(HTML, encoding="utf-8")
    (root / "fees.pdf").write_bytes(make_pdf(["Residence certificate fee is 300 yen.", "Apply at the counter."]))
    write_csv(root / "procedures.csv", CSV_ROWS, "shift_jis")
    table = pa.table({"item": ["空き缶", "乾電池"], "category": ["缶・びん・ペットボトル", None], "count": [1, 2]})
    pq.write_table(table, root / "items.parquet")
    (root / "note.txt").write_text("窓口は平日のみ開いています。土日は休みです。", encoding="utf-8")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # unsupported: skipped, counted
    (root / ".hidden.md").write_text("# secret", encoding="utf-8")  # hidden: ignored
    return root


def by_id(result: IngestResult) -> dict[str, Document]:
    return {d.id: d for d in result.documents}


# --------------------------------------------------------------------------------------------
# reading and chunking
# --------------------------------------------------------------------------------------------


def test_reads_every_format(corpus: Path) -> None:
    result = documents_from_path(corpus, tenant=TENANT)
    docs = by_id(result)
    assert result.source == "ingest:docs"
    assert result.errors == []
    assert result.files == 6
    assert result.skipped == 1
    assert all(d.tenant == TENANT and d.source == "ingest:docs" for d in result.documents)
    assert len(docs) == len(result.documents)  # ids are unique

    # every document's payload names its file and chunk
    for doc in result.documents:
        assert doc.payload["path"] == doc.id.rsplit("#", 1)[0]
        assert doc.payload["source_title"] == Path(doc.payload["path"]).name
        assert "chunk" in doc.payload
        assert doc.url is None


def test_markdown_heading_paths(corpus: Path) -> None:
    docs = [d for d in documents_from_path(corpus, tenant=TENANT).documents if d.payload["path"].endswith(".md")]
    titles = [d.title for d in docs]
    assert titles == [
        "juminhyo.md › 住民票の写しの交付",
        "juminhyo.md › 住民票の写しの交付 › 手続 › 必要書類",
        "juminhyo.md › 住民票の写しの交付 › 手続 › 手数料",
        "juminhyo.md › 住民票の写しの交付 › 問い合わせ",
    ]
    assert [d.id for d in docs] == [f"guides/juminhyo.md#{i}" for i in range(4)]
    assert [d.payload["chunk"] for d in docs] == [0, 1, 2, 3]
    required = docs[1]
    assert required.text.startswith("本人確認書類")
    assert "###" not in required.text  # the heading moved into the title
    assert required.kind == "document" and required.language == "ja"
    # link syntax reduced to its text; fenced code is text, not a heading
    assert "詳しくは市のページをご覧ください" in docs[3].text
    assert "https://" not in docs[3].text
    assert "# これは見出しではありません" in docs[3].text


def test_html_text_without_scripts(corpus: Path) -> None:
    docs = [d for d in documents_from_path(corpus, tenant=TENANT).documents if d.payload["path"] == "gomi.html"]
    assert len(docs) == 1
    doc = docs[0]
    assert doc.id == "gomi.html#0"
    assert doc.title == "gomi.html › ごみの出し方"
    # the source line break inside <p> is a space, as a browser shows it; blocks are lines
    assert doc.text == "燃やせるごみ\n燃やせるごみは 週2回、朝8時までに出してください。\n生ごみ\n紙くず"
    for absent in ("SECRET_SCRIPT_TEXT", "ALSO_SCRIPT", "color: red", "hidden comment", "サイトマップ", "函館市役所"):
        assert absent not in doc.text


def test_pdf_pages(corpus: Path) -> None:
    docs = [d for d in documents_from_path(corpus, tenant=TENANT).documents if d.payload["path"] == "fees.pdf"]
    assert [(d.id, d.payload["page"], d.text) for d in docs] == [
        ("fees.pdf#0", 1, "Residence certificate fee is 300 yen."),
        ("fees.pdf#1", 2, "Apply at the counter."),
    ]
    assert all(d.title == "fees.pdf" and d.language == "en" for d in docs)


def test_shift_jis_csv_rows(corpus: Path) -> None:
    docs = by_id(documents_from_path(corpus, tenant=TENANT))
    first = docs["procedures.csv#row0"]
    assert first.kind == "row"
    assert first.text == "手続名: 住民票の写し\n担当課: 市民課\n手数料: 300円"
    assert first.title == "procedures.csv › 住民票の写し"
    assert first.payload["row"] == 0
    # the blank row gives no document but keeps its number, so later rows keep their ids
    assert "procedures.csv#row1" not in docs
    assert docs["procedures.csv#row2"].text.startswith("手続名: 印鑑登録証明書")


def test_csv_encodings(tmp_path: Path) -> None:
    rows = [["名前", "値"], ["①丸数字", "㈱"]]  # cp932-only characters (NEC extensions)
    for encoding in ("utf-8", "utf-8-sig", "cp932"):
        path = tmp_path / f"{encoding}.csv"
        write_csv(path, rows, encoding)
        docs = documents_from_path(path, tenant=TENANT).documents
        assert [d.text for d in docs] == ["名前: ①丸数字\n値: ㈱"], encoding
    assert decode_text("住民票".encode("euc_jp")) == "住民票"
    assert decode_text("住民票".encode("shift_jis")) == "住民票"


def test_parquet_rows(corpus: Path) -> None:
    docs = by_id(documents_from_path(corpus, tenant=TENANT))
    assert docs["items.parquet#row0"].text == "item: 空き缶\ncategory: 缶・びん・ペットボトル\ncount: 1"
    assert docs["items.parquet#row1"].text == "item: 乾電池\ncount: 2"  # a null cell is left out
    assert docs["items.parquet#row1"].title == "items.parquet › 乾電池"


def test_japanese_chunking_respects_sentences(tmp_path: Path) -> None:
    sentences = [f"これは{i}番目の文で、手続の説明が続きます。" for i in range(60)]
    path = tmp_path / "long.txt"
    path.write_text("".join(sentences), encoding="utf-8")
    docs = documents_from_path(path, tenant=TENANT).documents
    assert len(docs) > 3
    assert [d.id for d in docs] == [f"long.txt#{i}" for i in range(len(docs))]
    for doc in docs:
        assert len(doc.text) <= CHUNK_CHARS
        assert doc.text.endswith("。")  # cut between sentences, not inside one
    # every sentence survives; consecutive chunks overlap by whole sentences
    joined = "".join(d.text for d in docs)
    assert all(s in joined for s in sentences)
    repeated = docs[1].text.split("。")[0] + "。"
    assert repeated in docs[0].text[-CHUNK_OVERLAP:]


def test_long_sentence_is_cut_without_losing_text() -> None:
    splitter = make_splitter(50, 0)
    text = "、".join(["申請書を記入し"] * 20) + "。"
    chunks = splitter.split_text(text)
    assert all(len(c) <= 50 for c in chunks)
    assert "".join(chunks) == text


def test_identical_input_gives_identical_documents(corpus: Path, tmp_path: Path) -> None:
    first = documents_from_path(corpus, tenant=TENANT).documents
    second = documents_from_path(corpus, tenant=TENANT).documents
    assert [(d.id, d.content_hash) for d in first] == [(d.id, d.content_hash) for d in second]
    assert default_source(corpus) == default_source(corpus / "." / "guides" / "..")


def test_single_file_root(corpus: Path) -> None:
    result = documents_from_path(corpus / "note.txt", tenant=TENANT, source="manual")
    assert result.source == "manual"
    assert [(d.id, d.title, d.text) for d in result.documents] == [
        ("note.txt#0", "note.txt", "窓口は平日のみ開いています。土日は休みです。")
    ]


def test_broken_files_are_errors_and_the_rest_loads(corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (corpus / "empty-layer.pdf").write_bytes(make_pdf([""]))  # a "scanned" PDF: pages, no text
    (corpus / "bad.parquet").write_bytes(b"PAR1 nonsense")
    (corpus / "empty.txt").write_bytes(b"")  # empty: neither documents nor an error
    result = documents_from_path(corpus, tenant=TENANT, progress=True)
    errors = dict(result.errors)
    assert set(errors) == {"broken.pdf", "empty-layer.pdf", "bad.parquet"}
    assert "PdfStreamError" in errors["broken.pdf"] or "PdfReadError" in errors["broken.pdf"]
    assert "no text layer" in errors["empty-layer.pdf"]
    assert result.files == 6
    assert {d.payload["path"] for d in result.documents} == {
        "guides/juminhyo.md",
        "gomi.html",
        "fees.pdf",
        "procedures.csv",
        "items.parquet",
        "note.txt",
    }


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        documents_from_path(tmp_path / "nope", tenant=TENANT)


def test_reading_never_touches_the_network(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access during ingestion")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("NLTK_DATA", str(corpus / "no-nltk-data-here"))
    assert documents_from_path(corpus, tenant=TENANT).documents


# --------------------------------------------------------------------------------------------
# incremental ingest into a real (embedded Qdrant) index
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def index(tmp_path: Path) -> Iterator[tuple[Indexer, Searcher, EdgeStore]]:
    store = EdgeStore(tmp_path / "edge")
    embedder = HashEmbedder(dim=16, model_id="test")
    sparse = SparseEncoder(CharBigramTokenizer())
    indexer = Indexer(store, embedder, sparse, EmbeddingCache(tmp_path / "c.npz"))
    yield indexer, Searcher(store, embedder, sparse), store
    store.close()


def sync(indexer: Indexer, root: Path) -> dict[str, Any]:
    result = documents_from_path(root, tenant=TENANT)
    assert result.errors == []
    report = indexer.sync(result.documents, tenant=TENANT, source=result.source)
    return {**report.as_dict(), "ids": report.ids, "total": len(result.documents)}


def test_incremental_ingest(corpus: Path, index: tuple[Indexer, Searcher, EdgeStore]) -> None:
    indexer, searcher, store = index
    first = sync(indexer, corpus)
    assert first["added"] == first["total"] > 0
    assert first["embedded"] == first["total"]
    assert store.count(TENANT) == first["total"]

    # unchanged files: nothing written, nothing embedded
    again = sync(indexer, corpus)
    assert (again["added"], again["updated"], again["deleted"], again["embedded"]) == (0, 0, 0, 0)
    assert again["unchanged"] == first["total"]

    # one file changed: only its chunk is rewritten
    (corpus / "note.txt").write_text(
        "窓口は平日のみ開いています。粗大ごみの予約は電話で受け付けます。", encoding="utf-8"
    )
    changed = sync(indexer, corpus)
    assert (changed["added"], changed["updated"], changed["deleted"]) == (0, 1, 0)
    assert changed["ids"]["changed"] == ["note.txt#0"]
    assert changed["unchanged"] == first["total"] - 1
    assert changed["embedded"] == 1

    filters = SearchFilters(tenant=TENANT)
    hits = searcher.search("粗大ごみの予約", filters, k=3)
    assert hits and hits[0].id == "note.txt#0"
    assert "粗大ごみ" in hits[0].text
    assert hits[0].payload["path"] == "note.txt"

    # one file deleted: its chunks go, the rest stays
    (corpus / "guides" / "juminhyo.md").unlink()
    removed = sync(indexer, corpus)
    assert removed["deleted"] == 4
    assert removed["ids"]["deleted"] == [f"guides/juminhyo.md#{i}" for i in range(4)]
    assert removed["unchanged"] == first["total"] - 4
    assert store.count(TENANT) == first["total"] - 4
    assert all(not p.payload["path"].endswith(".md") for p in searcher.search("必要書類 本人確認", filters, k=10))

    # another tenant sees none of it
    assert searcher.search("粗大ごみ", SearchFilters(tenant="sapporo", include_shared=False), k=3) == []


def test_ingest_helper_with_services(corpus: Path, tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "services-edge")
    services = Services(
        settings=Settings(var_dir=tmp_path / "var", data_dir=tmp_path / "data"),
        _overrides={"embedder": HashEmbedder(dim=16, model_id="test"), "store": store},
    )
    try:
        report = ingest(corpus, tenant=TENANT, services=services)
        assert report["source"] == "ingest:docs"
        assert report["files"] == 6 and report["skipped"] == 1 and report["errors"] == []
        assert report["sync"]["added"] == report["documents"] > 0
        meta = IndexMeta.read(services.meta_path)
        assert meta is not None and meta.embedder == "test" and meta.dim == 16

        # a file that fails this time keeps its indexed chunks; a deleted file's chunks go
        (corpus / "fees.pdf").write_bytes(b"%PDF-1.4\ncorrupted during copy")
        (corpus / "note.txt").unlink()
        report = ingest(corpus, tenant=TENANT, services=services)
        assert [e["path"] for e in report["errors"]] == ["fees.pdf"]
        assert report["kept_from_failed_files"] == 2
        assert report["sync"]["deleted"] == 1
        ids = set(store.content_hashes(TENANT, "ingest:docs"))
        assert {"fees.pdf#0", "fees.pdf#1"} <= ids
        assert "note.txt#0" not in ids
    finally:
        services.close()
