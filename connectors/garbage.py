"""Hakodate's garbage sorting table (5374.jp format: type,name,notice,furigana) -> documents."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from retrieval._types import Document

SOURCE_ID = "hakodate-garbage"
SOURCE_TITLE = "函館市 ごみの分け方・出し方（5374.jp データ）"
SOURCE_URL = "https://github.com/codeforhakodate/5374"

#: What each category means for the person holding the item (from the city's own guidance).
CATEGORY_ADVICE = {
    "市で収集しない": "市では収集しません。",
    "有料粗大ごみ": "有料の粗大ごみです（事前申込みが必要です）。",
    "有料戸別収集": "有料の戸別収集です。",
}


def garbage_documents(path: Path, *, tenant: str = "hakodate") -> Iterator[Document]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"type", "name"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a 5374 target.csv (missing columns {sorted(missing)})")
        for number, row in enumerate(reader, start=1):
            name = (row.get("name") or "").strip()
            category = (row.get("type") or "").strip()
            if not name or not category:
                continue
            notice = (row.get("notice") or "").strip()
            lines = [f"品目: {name}", f"分別区分: {category}"]
            if category in CATEGORY_ADVICE:
                lines.append(CATEGORY_ADVICE[category])
            if notice:
                lines.append(f"出し方の注意: {notice}")
            embed = f"{name}の捨て方: {category}" + (f"。{notice}" if notice else "")
            yield Document(
                id=f"garbage-{tenant}-{number}",
                tenant=tenant,
                kind="garbage",
                source=SOURCE_ID,
                title=f"{name}（ごみの分別）",
                text="\n".join(lines),
                embed_text=embed,
                url=SOURCE_URL,
                language="ja",
                payload={"item": name, "category": category, "notice": notice, "source_title": SOURCE_TITLE},
            )
