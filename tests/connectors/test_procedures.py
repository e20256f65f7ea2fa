from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.procedures import (
    CITIZEN_OR_BUSINESS_FILERS,
    procedure_documents,
    procedure_embed_text,
    procedure_text,
    strip_code,
)
from retrieval._types import SHARED_TENANT

DATA = Path(__file__).resolve().parents[2] / "data"

BIRTH = {
    "手続ID": "13165",
    "所管府省庁": "法務省",
    "手続名": "戸籍の届出（出生）",
    "法令名": "戸籍法",
    "根拠条項号": "第49条第1項",
    "手続類型": "1 申請等",
    "手続主体": "5 国民等",
    "手続の受け手": "3 地方等",
    "オンライン化の実施状況": "2 未実施",
    "申請時に添付させる書類": "その他の添付書類",
    "手数料等の納付有無": "1 手数料等無し",
    "手続が行われるイベント(個人)": "出生・こども; その他(個人も法人にもあてはまらない)",
    "申請を提出する機関": "市役所・町村役場",
    "総手続件数": 1000,
}


def test_strip_code() -> None:
    assert strip_code("1 実施済") == "実施済"
    assert strip_code("4-3 国又は地方等") == "国又は地方等"
    assert strip_code("市役所") == "市役所"


def test_text_has_one_citable_fact_per_line() -> None:
    text = procedure_text(BIRTH)
    lines = text.splitlines()
    assert lines[0] == "手続名: 戸籍の届出（出生）"
    assert "根拠法令: 戸籍法 第49条第1項" in lines
    assert "手続をする人: 国民等" in lines
    assert "提出先: 市役所・町村役場" in lines
    assert "オンライン申請: 未実施" in lines
    assert "手数料: 手数料等無し" in lines
    # uninformative life events are dropped, real ones kept
    assert "ライフイベント: 出生・こども" in lines


def test_embed_text_is_compact() -> None:
    assert procedure_embed_text(BIRTH) == "戸籍の届出（出生）。戸籍法。出生・こども"


def test_documents_from_a_parquet_keep_fields_and_filter_filers(tmp_path: Path) -> None:
    state_row = {**BIRTH, "手続ID": "1", "手続名": "国の通知", "手続主体": "1 国"}
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([BIRTH, state_row]), path)
    docs = list(procedure_documents(path))
    assert [d.id for d in docs] == ["proc-13165"]
    doc = docs[0]
    assert doc.tenant == SHARED_TENANT and doc.kind == "procedure"
    assert doc.payload["fields"]["法令名"] == "戸籍法"
    assert doc.payload["fields"]["総手続件数"] == 1000
    assert len(list(procedure_documents(path, filers=None))) == 2


@pytest.mark.skipif(not (DATA / "procedures").exists(), reason="shipped data not present")
def test_the_shipped_survey_yields_the_citizen_and_business_procedures() -> None:
    docs = list(procedure_documents(DATA / "procedures/procedures_data_R7-0729.parquet"))
    assert len(docs) == 34660
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.payload["fields"]["手続主体"] in CITIZEN_OR_BUSINESS_FILERS for d in docs)
