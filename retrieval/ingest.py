"""Files to Documents: Markdown, HTML, PDF, CSV, Parquet and text, read and chunked with llama-index.

A folder (or one file) becomes a list of :class:`~retrieval._types.Document` under one source id
(``ingest:<folder name>`` by default), ready for :meth:`retrieval.index.Indexer.sync`, which makes the
index hold exactly these documents for (tenant, source): a re-ingest writes only what changed.

- Prose (Markdown, HTML, PDF pages, text) is cut into chunks of about ``CHUNK_CHARS`` characters by
  llama-index's ``SentenceSplitter`` with Japanese sentence boundaries (。！？ and line ends): the
  embedding model (multilingual-e5-small) reads at most 512 tokens, and 400 Japanese characters
  stay well inside that with the title and the "passage: " prefix.
- Markdown keeps its heading path as the chunk title ("file.md › 手続 › 必要書類"), so a chunk
  that says only "本人確認書類が必要です" still tells the reader (and the retrievers) what it is about.
- Tables (CSV, Parquet) give one document per row, as "column: value" lines; a row is cut only
  when it is very long.

Ids are ``<relative path>#<chunk>`` (rows ``<relative path>#row<n>``) and everything is read in a
fixed order, so the same files always give the same documents (the incremental re-ingest relies on
that). Nothing here touches the network: the splitter counts characters (llama-index's default
tokenizer is tiktoken, whose default cache location would be downloaded to) and splits sentences
with a regex (its default sentence tokenizer is NLTK punkt, which may try to download its data).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document as LlamaDocument
from tqdm import tqdm

from retrieval._types import Document, Language
from retrieval.index import IndexMeta

if TYPE_CHECKING:
    from assistant.services import Services

#: chunk size in characters (not tokens): see the module docstring
CHUNK_CHARS = 400
#: characters of the previous chunk repeated at the start of the next (whole sentences only)
CHUNK_OVERLAP = 60
#: a table row longer than this is cut like prose (e5 would not read past ~512 tokens anyway)
ROW_SPLIT_CHARS = 800
#: joins file name and headings in titles
TITLE_SEPARATOR = " › "
#: length of the first cell shown in a row's title
ROW_TITLE_CHARS = 60

#: suffix -> format; anything else is skipped (and counted)
FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
}

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")
# Sentence ends: Japanese full stops and marks, line ends, and a Latin full stop before a space.
# A zero-width split keeps every character (re.findall with a "[^。]+。?" pattern would silently
# drop the line breaks between sentences).
_SENTENCE_END = re.compile(r"(?<=[。！？!?．\n])|(?<=\.)(?=\s)")
# A sentence longer than a chunk is cut at clause marks (読点) before llama-index falls back to
# spaces and then single characters; the second alternative keeps a lone mark, so nothing is lost.
_CLAUSE_REGEX = r"[^、，,；;]+[、，,；;]?|[、，,；;]"
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^(#+)\s+(.*?)(?:\s+#+)?\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")
# HTML elements that never carry page text
_HTML_DROP = ("script", "style", "noscript", "template", "svg", "iframe", "object", "head")
# elements that start a new line when a browser renders them
_HTML_BLOCKS = (
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tr", "ul",
)  # fmt: skip
# what real-world pages mean by "Shift_JIS": Windows' superset (①, ㈱, NEC/IBM kanji)
_SJIS_ALIASES = {"shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j", "cp932"}


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def detect_language(text: str) -> Language:
    """Japanese if the text has any kana or kanji: an ingested Japanese page often quotes English
    (e-Gov, URLs, form ids), an English one rarely has Japanese at all."""
    return "ja" if _JAPANESE.search(text) else "en"


def decode_text(data: bytes) -> str:
    """Bytes of a text file to str: UTF-8 (with or without BOM), UTF-16 with BOM, else Shift_JIS.

    Japanese government files (CSV exports from Excel especially) are often Shift_JIS, which
    Windows writes as cp932. EUC-JP is tried too: it is rare, but cp932 happens to decode it
    without error into half-width katakana garbage, so of two decodings the one with fewer
    half-width katakana wins (ties go to cp932, by far the more common).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    candidates: list[str] = []
    for encoding in ("cp932", "euc_jp"):
        try:
            candidates.append(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    if not candidates:
        raise ValueError("unknown text encoding (not UTF-8, UTF-16, Shift_JIS or EUC-JP)")
    return min(candidates, key=lambda text: len(_HALFWIDTH_KANA.findall(text)))


def clean_text(text: str) -> str:
    """One line-end convention, no control characters, no trailing spaces, at most one blank line."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _characters(text: str) -> list[str]:
    """The splitter's "tokenizer": chunk sizes are in characters (see the module docstring)."""
    return list(text)


def _sentences(text: str) -> list[str]:
    return [piece for piece in _SENTENCE_END.split(text) if piece]


def make_splitter(chunk_chars: int = CHUNK_CHARS, chunk_overlap: int = CHUNK_OVERLAP) -> SentenceSplitter:
    """llama-index's SentenceSplitter measuring characters and splitting Japanese sentences.

    Order of cuts: paragraphs (blank lines), sentences, clauses (、), spaces, characters.
    """
    return SentenceSplitter(
        chunk_size=chunk_chars,
        chunk_overlap=chunk_overlap,
        tokenizer=_characters,
        paragraph_separator="\n\n",
        chunking_tokenizer_fn=_sentences,
        secondary_chunking_regex=_CLAUSE_REGEX,
        separator=" ",
    )


def _error_message(exc: BaseException) -> str:
    # llama-index's PDFReader retries with tenacity, which wraps the real error in a RetryError
    last_attempt = getattr(exc, "last_attempt", None)
    if last_attempt is not None:
        inner = last_attempt.exception()
        if isinstance(inner, BaseException):
            exc = inner
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# --------------------------------------------------------------------------------------------
# readers (llama-index BaseReaders, usable in SimpleDirectoryReader(file_extractor=...) too)
# --------------------------------------------------------------------------------------------
#
# Every reader returns llama-index Documents whose metadata carries "title" (and "row" for table
# rows). llama-index's own MarkdownReader, HTMLTagReader and CSV readers do not fit: the Markdown
# one misattributes text under a parent heading to the first sub-heading and loses paragraphs,
# the HTML one reads one tag name only (default <section>) and keeps <script> text, and the CSV
# ones neither label values with their columns nor read Shift_JIS.


class PlainTextReader(BaseReader):
    """A text file as one document (UTF-8 or Shift_JIS)."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[LlamaDocument]:
        text = clean_text(decode_text(Path(file).read_bytes()))
        return [LlamaDocument(text=text, metadata={"title": Path(file).name, **(extra_info or {})})]


class MarkdownTextReader(BaseReader):
    """A Markdown file as one document, link and image syntax reduced to their text.

    Headings stay in the text: :func:`markdown_sections` turns them into section titles.
    """

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[LlamaDocument]:
        text = clean_text(decode_text(Path(file).read_bytes()))
        text = _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", text))
        return [LlamaDocument(text=text, metadata={"title": Path(file).name, **(extra_info or {})})]


def _html_declared_encoding(data: bytes) -> str | None:
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(data, is_html=True)
    if declared is None:
        return None
    declared = declared.lower()
    return "cp932" if declared in _SJIS_ALIASES else declared


def decode_html(data: bytes) -> str:
    """The page's declared charset (<meta charset>) if Python knows it, else as :func:`decode_text`."""
    declared = _html_declared_encoding(data)
    if declared is not None and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration is common enough: fall back to detection
    return decode_text(data)


def html_to_text(markup: str) -> tuple[str, str]:
    """(page title, visible text) of an HTML page: no tags, scripts, styles or comments.

    Text comes from <main> when the page has one (site menus and footers stay out), else from
    <body>. Whitespace follows the browser: runs of spaces and source line breaks are one space,
    block elements (p, li, h1, tr ...) start new lines, <br> breaks a line, <pre> is kept as is.
    """
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, PreformattedString, Tag

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text().split()) if title_tag is not None else ""
    for tag in soup.find_all(list(_HTML_DROP)):
        tag.decompose()
    for string in list(soup.find_all(string=True)):
        if isinstance(string, PreformattedString):  # comments, doctype, CDATA, processing instructions
            string.extract()
        elif isinstance(string, NavigableString) and string.find_parent("pre") is None:
            string.replace_with(_HTML_SPACE.sub(" ", str(string)))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" ")
    for block in soup.find_all(list(_HTML_BLOCKS)):
        block.insert_before("\n")
        block.insert_after("\n")
    main = soup.find("main") or soup.find(None, {"role": "main"}) or soup.find("body") or soup
    root = main if isinstance(main, Tag) else soup
    lines = (line.strip() for line in root.get_text().split("\n"))
    return title, "\n".join(line for line in lines if line)


class HTMLTextReader(BaseReader):
    """An HTML page as one document: its visible text, titled "file.html › <title>"."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[LlamaDocument]:
        page_title, text = html_to_text(decode_html(Path(file).read_bytes()))
        name = Path(file).name
        title = f"{name}{TITLE_SEPARATOR}{page_title}" if page_title else name
        return [LlamaDocument(text=clean_text(text), metadata={"title": title, **(extra_info or {})})]


def _cell(value: Any) -> str:
    """A table cell as text; empty for missing values (None, NaN, NaT)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value).strip()


def _row_document(name: str, columns: Sequence[str], values: Sequence[Any], row: int) -> LlamaDocument | None:
    pairs = [(column, _cell(value)) for column, value in zip(columns, values, strict=False)]
    # cells past the header (a ragged CSV row) are kept, under a positional name
    pairs += [(f"column{i + 1}", _cell(v)) for i, v in enumerate(values) if i >= len(columns)]
    pairs = [(column, value) for column, value in pairs if value]
    if not pairs:
        return None
    first = " ".join(pairs[0][1].split())
    if len(first) > ROW_TITLE_CHARS:
        first = first[: ROW_TITLE_CHARS - 1] + "…"
    text = "\n".join(f"{column}: {value}" for column, value in pairs)
    return LlamaDocument(text=text, metadata={"title": f"{name}{TITLE_SEPARATOR}{first}", "row": row})


def _column_names(header: Sequence[Any]) -> list[str]:
    return [str(h).strip() or f"column{i + 1}" for i, h in enumerate(header)]


class CSVRowReader(BaseReader):
    """One document per CSV row ("column: value" lines); UTF-8 (BOM tolerated) or Shift_JIS.

    Rows are numbered from 0 after the header, blank rows included, so a row keeps its number
    (and its document id) when a blank row elsewhere is removed or added at the end.
    """

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[LlamaDocument]:
        text = decode_text(Path(file).read_bytes())
        rows = csv.reader(io.StringIO(text, newline=""))
        header: list[str] | None = None
        docs: list[LlamaDocument] = []
        number = 0
        for cells in rows:
            if header is None:
                if any(c.strip() for c in cells):
                    header = _column_names(cells)
                continue
            doc = _row_document(Path(file).name, header, cells, number)
            number += 1
            if doc is not None:
                doc.metadata.update(extra_info or {})
                docs.append(doc)
        return docs


class ParquetRowReader(BaseReader):
    """One document per Parquet row, read in record batches (a large file never sits in memory whole)."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[LlamaDocument]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(str(file))
        columns = _column_names(parquet.schema_arrow.names)
        docs: list[LlamaDocument] = []
        number = 0
        for batch in parquet.iter_batches():
            for record in batch.to_pylist():
                doc = _row_document(Path(file).name, columns, list(record.values()), number)
                number += 1
                if doc is not None:
                    doc.metadata.update(extra_info or {})
                    docs.append(doc)
        return docs


def read_pdf(file: Path) -> list[LlamaDocument]:
    """PDF pages through llama-index's PDFReader (pypdf): one document per page, "page" 1-based."""
    from llama_index.readers.file import PDFReader

    pages = PDFReader(return_full_document=False).load_data(file=Path(file))
    docs: list[LlamaDocument] = []
    for number, page in enumerate(pages, start=1):
        metadata = {"title": Path(file).name, "page": number, "page_label": page.metadata.get("page_label")}
        docs.append(LlamaDocument(text=clean_text(page.text or ""), metadata=metadata))
    return docs


def file_extractor() -> dict[str, BaseReader]:
    """Readers by suffix, for ``SimpleDirectoryReader(file_extractor=...)`` (PDF keeps llama-index's default)."""
    readers: dict[str, BaseReader] = {
        "markdown": MarkdownTextReader(),
        "html": HTMLTextReader(),
        "csv": CSVRowReader(),
        "parquet": ParquetRowReader(),
        "text": PlainTextReader(),
    }
    return {suffix: readers[fmt] for suffix, fmt in FORMATS.items() if fmt in readers}


# --------------------------------------------------------------------------------------------
# sections and chunks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A titled run of text to be chunked (a Markdown section, a PDF page, a whole page or file)."""

    title: str
    text: str
    page: int | None = None


def markdown_sections(text: str, name: str) -> list[Section]:
    """Sections of a Markdown text, titled by file name and heading path ("file.md › 手続 › 必要書類").

    llama-index's MarkdownNodeParser finds the sections (it knows fenced code is not a heading) and
    records the parent headings; the section's own heading is its first line, moved into the title
    so chunks do not repeat it. A heading with no text under it gives no section.
    """
    # a separator no heading contains, so the recorded path splits back into headings exactly
    separator = "\x1f"
    parser = MarkdownNodeParser(header_path_separator=separator, include_prev_next_rel=False)
    sections: list[Section] = []
    for node in parser.get_nodes_from_documents([LlamaDocument(text=text)]):
        body = node.get_content()
        path = [h.strip() for h in str(node.metadata.get("header_path", "")).split(separator) if h.strip()]
        first, _, rest = body.partition("\n")
        heading = _MD_HEADING.match(first)
        if heading is not None:
            path.append(heading.group(2).strip())
            body = rest
        body = clean_text(body)
        if body:
            sections.append(Section(title=TITLE_SEPARATOR.join([name, *path]), text=body))
    return sections


@dataclass
class IngestResult:
    """Documents read from a file or folder, and what could not be read.

    ``files`` counts files that gave documents; ``errors`` lists (relative path, message) of
    files that failed or held no text; ``skipped`` counts files of unsupported types.
    """

    documents: list[Document]
    source: str
    files: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0


def default_source(root: Path) -> str:
    """``ingest:<name>``: stable for a folder, so ingesting it again replaces what it gave before."""
    return f"ingest:{root.resolve().name or root.resolve().as_posix()}"


def _discover(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, relative POSIX path) of the files under ``root`` in a fixed order; hidden ones left out."""
    if root.is_file():
        yield root, root.name
        return
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        # .git, .DS_Store, editor swap files: never content
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        found.append((relative.as_posix(), path))
    for relative_posix, path in sorted(found):
        yield path, relative_posix


def _load(path: Path, fmt: str) -> tuple[list[Section], list[LlamaDocument]]:
    """(prose sections, table rows) of one file."""
    if fmt == "csv":
        return [], CSVRowReader().load_data(path)
    if fmt == "parquet":
        return [], ParquetRowReader().load_data(path)
    if fmt == "pdf":
        return [Section(str(d.metadata["title"]), d.text, d.metadata["page"]) for d in read_pdf(path)], []
    if fmt == "markdown":
        doc = MarkdownTextReader().load_data(path)[0]
        return markdown_sections(doc.text, path.name), []
    reader: BaseReader = HTMLTextReader() if fmt == "html" else PlainTextReader()
    return [Section(str(d.metadata["title"]), d.text) for d in reader.load_data(path)], []


def _documents(
    relative: str,
    name: str,
    sections: Sequence[Section],
    rows: Sequence[LlamaDocument],
    *,
    tenant: str,
    source: str,
    splitter: SentenceSplitter,
) -> list[Document]:
    out: list[Document] = []

    def add(doc_id: str, kind: str, title: str, text: str, payload: dict[str, Any]) -> None:
        out.append(
            Document(
                id=doc_id,
                tenant=tenant,
                kind=kind,
                source=source,
                title=title,
                text=text,
                language=detect_language(text),
                payload={"path": relative, **payload, "source_title": name},
            )
        )

    chunk = 0
    for section in sections:
        # split_text("") is [""]: an empty page or section must give no document
        for text in splitter.split_text(section.text) if section.text.strip() else []:
            payload: dict[str, Any] = {"chunk": chunk}
            if section.page is not None:
                payload["page"] = section.page
            add(f"{relative}#{chunk}", "document", section.title, text, payload)
            chunk += 1
    for row in rows:
        number = int(row.metadata["row"])
        title = str(row.metadata["title"])
        pieces = splitter.split_text(row.text) if len(row.text) > ROW_SPLIT_CHARS else [row.text]
        for index, text in enumerate(pieces):
            # one piece keeps the plain row id; a cut row numbers its pieces
            doc_id = f"{relative}#row{number}" if len(pieces) == 1 else f"{relative}#row{number}.{index}"
            add(doc_id, "row", title, text, {"row": number, "chunk": index})
    return out


def documents_from_path(
    root: Path,
    *,
    tenant: str,
    source: str | None = None,
    progress: bool = False,
    chunk_chars: int = CHUNK_CHARS,
    chunk_overlap: int = CHUNK_OVERLAP,
) -> IngestResult:
    """Documents of a file or of every supported file under a folder (recursively).

    A file that cannot be read (corrupt, unknown encoding, a PDF with no text layer) is listed in
    ``errors`` and the others still load. Raises ``FileNotFoundError`` if ``root`` does not exist:
    syncing an empty result would delete everything the source held.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such file or folder: {root}")
    result = IngestResult(documents=[], source=source or default_source(root))
    splitter = make_splitter(chunk_chars, chunk_overlap)
    files = list(_discover(root))
    for path, relative in tqdm(files, desc="reading files", unit="file", disable=not progress):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            result.skipped += 1
            continue
        try:
            sections, rows = _load(path, fmt)
            docs = _documents(
                relative, path.name, sections, rows, tenant=tenant, source=result.source, splitter=splitter
            )
        except Exception as exc:  # any reader failure is this file's problem, not the run's
            result.errors.append((relative, _error_message(exc)))
            continue
        if not docs:
            if path.stat().st_size > 0:  # an empty file is not an error; a non-empty one with no text is
                what = "no text layer (a scanned PDF needs OCR first)" if fmt == "pdf" else "no text"
                result.errors.append((relative, what))
            continue
        result.files += 1
        result.documents.extend(docs)
    return result


# --------------------------------------------------------------------------------------------
# ingest into the index
# --------------------------------------------------------------------------------------------


def _path_of(doc_id: str) -> str:
    return doc_id.rsplit("#", 1)[0]


def ingest(
    root: Path,
    *,
    tenant: str,
    services: Services,
    source: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Read ``root`` and make the index hold its documents for (tenant, source); a JSON-able report.

    Incremental: unchanged chunks are skipped, changed ones re-embedded, chunks of deleted files
    deleted. Chunks of a file that failed to read this time are kept as they were (a file locked
    by an editor or half-copied should not vanish from the index); they go once the file is gone.
    """
    # refuse an index built with another embedder or tokenizer before writing anything to it
    meta = services.check_index()
    result = documents_from_path(Path(root), tenant=tenant, source=source, progress=progress)
    failed = {path for path, _ in result.errors}
    started = dt.datetime.now(dt.UTC)
    report = services.indexer().sync(
        result.documents,
        tenant=tenant,
        source=result.source,
        keep=lambda doc_id: _path_of(doc_id) in failed,
        progress=progress,
    )
    services.runlog.record(
        "ingest", report, started=started, embedder=services.embedder.model_id, errors=len(result.errors)
    )
    if meta is None:
        # a first ingest creates the index: record what its vectors were made with, as `tosei index` does
        IndexMeta(
            embedder=services.embedder.model_id,
            dim=services.embedder.dim,
            sparse_tokenizer=services.sparse.name,
            avg_len=services.sparse.avg_len,
        ).write(services.meta_path)
    return {
        "tenant": tenant,
        "source": result.source,
        "files": result.files,
        "skipped": result.skipped,
        "documents": len(result.documents),
        "errors": [{"path": path, "error": message} for path, message in result.errors],
        "kept_from_failed_files": report.kept,
        "sync": report.as_dict(),
    }
