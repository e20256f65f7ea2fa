from __future__ import annotations

from pathlib import Path

import pytest

from connectors.garbage import garbage_documents

DATA = Path(__file__).resolve().parents[2] / "data"


def test_items_become_documents(tmp_path: Path) -> None:
    path = tmp_path / "target.csv"
    path.write_text(
        "\ufefftype,name,notice,furigana\n"
        "燃やさないごみ,アイスピック,先端部を紙で包み「危険」と表示,あ\n"
        "市で収集しない,石,専門業者に処分を依頼してください,い\n"
        ",名無し,,う\n",
        encoding="utf-8",
    )
    docs = list(garbage_documents(path, tenant="hakodate"))
    assert [d.id for d in docs] == ["garbage-hakodate-1", "garbage-hakodate-2"]
    assert docs[0].text.splitlines() == [
        "品目: アイスピック",
        "分別区分: 燃やさないごみ",
        "出し方の注意: 先端部を紙で包み「危険」と表示",
    ]
    assert "市では収集しません" in docs[1].text
    assert docs[0].payload["category"] == "燃やさないごみ"


def test_a_file_of_another_format_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"not a 5374 target\.csv"):
        list(garbage_documents(path))


def test_the_shipped_table() -> None:
    docs = list(garbage_documents(DATA / "garbage_hakodate/target.csv"))
    assert len(docs) == 1251
    frying_pan = [d for d in docs if d.payload["item"].startswith("フライパン")]
    assert frying_pan and frying_pan[0].payload["category"] == "燃やさないごみ"
