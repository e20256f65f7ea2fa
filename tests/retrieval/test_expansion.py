from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.expansion import QueryExpander

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def expander() -> QueryExpander:
    return QueryExpander.from_yaml(DATA / "thesaurus.yaml")


def test_citizen_words_gain_administrative_terms(expander: QueryExpander) -> None:
    result = expander.expand("パスポートを申請したい")
    assert "一般旅券" in result.added
    assert result.query.startswith("パスポートを申請したい")


def test_full_width_and_case_variants_match(expander: QueryExpander) -> None:
    assert "一般旅券" in expander.expand("ﾊﾟｽﾎﾟｰﾄ").added  # half-width katakana after NFKC
    assert "一般旅券" in expander.expand("PASSPORT renewal").added


def test_english_keys_match_whole_words_only(expander: QueryExpander) -> None:
    # "Can I" is a modal verb, not a can; "cancel" contains no word "can"
    assert "缶" not in expander.expand("Can I cancel my application?").added
    assert "テレビ" in expander.expand("How do I throw away a TV?").added
    assert "テレビ" not in expander.expand("Is there a tvfoo?").added


def test_stems_match_word_beginnings(expander: QueryExpander) -> None:
    assert "資源" in expander.expand("Where does recycling go?").added


def test_terms_already_in_the_question_are_not_repeated(expander: QueryExpander) -> None:
    result = expander.expand("児童手当の認定の請求")
    assert "児童手当の認定の請求" not in result.added


def test_a_question_without_known_words_is_unchanged(expander: QueryExpander) -> None:
    result = expander.expand("天気はどうですか")
    assert result.added == () and result.query == "天気はどうですか"


def test_a_malformed_thesaurus_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("ja:\n  パスポート: 一般旅券\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must be a list of strings"):
        QueryExpander.from_yaml(bad)
