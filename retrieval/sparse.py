"""Sparse lexical terms for Japanese (and English) text, weighted as BM25.

Japanese has no spaces, so the default terms are characters and character bigrams: robust
to unknown words and to a citizen's spelling (ごみ/ゴミ after NFKC, 届出/届け出 share bigrams).
Sudachi-normalized words are an option (``TOSEI_SPARSE_TOKENIZER=sudachi``): fewer, more
meaningful terms (届け出 -> 届出, 子供 -> 子ども).

Documents carry the BM25 term-frequency part; the store's IDF modifier (Qdrant ``Modifier.IDF``)
supplies the inverse document frequency from the live collection, so adding documents never
requires re-weighting the others.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

K1 = 1.2
B = 0.75

_SEPARATORS = re.compile(r"[\s\u3000、。，．,.!?！？「」『』（）()\[\]【】・:：;；/／\-ー〜~\"'“”…]+")
_LATIN_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def term_id(term: str) -> int:
    """Stable 32-bit id of a term (the same across processes and machines)."""
    return zlib.crc32(term.encode("utf-8"))


class Tokenizer(Protocol):
    name: str

    def terms(self, text: str) -> list[str]: ...


class CharBigramTokenizer:
    """Character unigrams and bigrams inside runs of text; whole words for Latin script."""

    name = "char"

    def terms(self, text: str) -> list[str]:
        out: list[str] = []
        for run in _SEPARATORS.split(normalize(text)):
            if not run:
                continue
            # Latin words are terms as they are (English questions, "e-gov", "ic")
            for word in _LATIN_WORD.findall(run):
                out.append(f"w:{word}")
            cjk = _LATIN_WORD.sub(" ", run).split()
            for piece in cjk:
                out.extend(f"u:{ch}" for ch in piece)
                out.extend(f"b:{piece[i : i + 2]}" for i in range(len(piece) - 1))
        return out


class SudachiTokenizer:
    """Sudachi (mode C) normalized forms of content words."""

    name = "sudachi"
    _SKIP_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})

    def __init__(self) -> None:
        from sudachipy import Dictionary, SplitMode

        self._tokenizer = Dictionary(dict="core").create()
        self._mode = SplitMode.C
        # a Sudachi tokenizer object is not safe to share between threads
        self._lock = threading.Lock()

    def terms(self, text: str) -> list[str]:
        with self._lock:
            morphemes = self._tokenizer.tokenize(normalize(text), self._mode)
            return [
                f"s:{m.normalized_form()}"
                for m in morphemes
                if m.part_of_speech()[0] not in self._SKIP_POS and m.surface().strip()
            ]


@lru_cache(maxsize=2)
def get_tokenizer(name: str) -> Tokenizer:
    if name == "char":
        return CharBigramTokenizer()
    if name == "sudachi":
        return SudachiTokenizer()
    raise ValueError(f"unknown sparse tokenizer {name!r} (expected 'char' or 'sudachi')")


class SparseEncoder:
    """BM25 term weights for documents; binary term presence for queries."""

    def __init__(self, tokenizer: Tokenizer, avg_len: float = 60.0) -> None:
        self.tokenizer = tokenizer
        self.avg_len = avg_len

    @property
    def name(self) -> str:
        return self.tokenizer.name

    def encode_document(self, text: str) -> SparseVector:
        counts = Counter(term_id(t) for t in self.tokenizer.terms(text))
        length = sum(counts.values()) or 1
        norm = K1 * (1 - B + B * length / self.avg_len)
        indices = sorted(counts)
        return SparseVector(indices, [counts[i] * (K1 + 1) / (counts[i] + norm) for i in indices])

    def encode_query(self, text: str) -> SparseVector:
        indices = sorted({term_id(t) for t in self.tokenizer.terms(text)})
        return SparseVector(indices, [1.0] * len(indices))

    def average_length(self, texts: list[str]) -> float:
        if not texts:
            return self.avg_len
        return sum(len(self.tokenizer.terms(t)) for t in texts) / len(texts)
