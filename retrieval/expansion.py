"""Query expansion with a citizen-to-administrative thesaurus (data/thesaurus.yaml).

A citizen asks for a パスポート; the procedure is 一般旅券の発給の申請. Neither retriever bridges
that gap reliably (the dense model is small, the sparse one shares no characters), so the words
administrative documents use are appended to the question before both are searched. English
keys map to Japanese terms, which gives foreign residents lexical matches in a Japanese corpus.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Expansion:
    query: str
    added: tuple[str, ...]


def _word_pattern(key: str) -> re.Pattern[str]:
    """Whole words ("can" must not match "cancel"); ``key*`` matches word beginnings."""
    stem = key.endswith("*")
    body = re.escape(key.rstrip("*").lower())
    return re.compile(rf"(?<![a-z']){body}" + ("" if stem else r"(?![a-z])"), re.I)


class QueryExpander:
    def __init__(self, japanese: dict[str, list[str]], english: dict[str, list[str]]) -> None:
        self._ja = [(unicodedata.normalize("NFKC", k).lower(), tuple(v)) for k, v in japanese.items()]
        # longest keys first so "washing machine" is tried before "machine"-like shorter keys
        self._en = [(_word_pattern(k), tuple(v)) for k, v in english.items()]

    @classmethod
    def from_yaml(cls, path: Path) -> QueryExpander:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for lang in ("ja", "en"):
            for key, values in (raw.get(lang) or {}).items():
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise ValueError(f"{path}: entry {lang}.{key} must be a list of strings")
        return cls(raw.get("ja") or {}, raw.get("en") or {})

    def expand(self, query: str) -> Expansion:
        normalized = unicodedata.normalize("NFKC", query).lower()
        added: list[str] = []
        for key, terms in self._ja:
            if key in normalized:
                added.extend(t for t in terms if t not in added and t.lower() not in normalized)
        for pattern, terms in self._en:
            if pattern.search(normalized):
                added.extend(t for t in terms if t not in added)
        if not added:
            return Expansion(query, ())
        return Expansion(f"{query} （{'、'.join(added)}）", tuple(added))
