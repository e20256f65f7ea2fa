from __future__ import annotations

import pytest

from retrieval.sparse import CharBigramTokenizer, SparseEncoder, SudachiTokenizer, get_tokenizer, term_id


def test_char_terms_are_unigrams_and_bigrams_within_runs() -> None:
    terms = CharBigramTokenizer().terms("出生届、ゴミ")
    assert "u:出" in terms and "b:出生" in terms and "b:生届" in terms
    # punctuation separates runs: no bigram spans "届、ゴ"
    assert "b:届ご" not in terms and "b:届ゴ" not in terms
    assert "b:ゴミ" in terms


def test_nfkc_and_case_folding_make_variants_match() -> None:
    tok = CharBigramTokenizer()
    assert tok.terms("ＩＣレコーダー") == tok.terms("ICレコーダー")
    assert "w:ic" in tok.terms("ICレコーダー")
    assert "w:passport" in tok.terms("Passport application")


def test_term_ids_are_stable_across_processes() -> None:
    # crc32, not Python's salted hash(): the index and every worker must agree
    assert term_id("b:出生") == 357551376


def test_bm25_document_weights_saturate_and_length_normalize() -> None:
    enc = SparseEncoder(CharBigramTokenizer(), avg_len=10)
    short = enc.encode_document("出生届")
    long = enc.encode_document("出生届" + "あいうえおかきくけこ" * 5)
    idx = term_id("b:出生")
    w_short = short.values[short.indices.index(idx)]
    w_long = long.values[long.indices.index(idx)]
    assert w_short > w_long > 0  # the same term weighs less in a longer document
    repeated = enc.encode_document("出生" * 50)
    assert max(repeated.values) < 2.2 + 1e-9  # tf saturates at k1 + 1


def test_query_is_binary_and_sorted() -> None:
    q = SparseEncoder(CharBigramTokenizer()).encode_query("出生 出生")
    assert q.indices == sorted(set(q.indices))
    assert set(q.values) == {1.0}


def test_sudachi_normalizes_words() -> None:
    tok = SudachiTokenizer()
    assert "s:届け出" in tok.terms("届出") or "s:届出" in tok.terms("届け出")
    terms = tok.terms("子どもが生まれました")
    assert all(t.startswith("s:") for t in terms)
    assert not any(t in ("s:が", "s:ます") for t in terms)  # particles and auxiliaries dropped


def test_unknown_tokenizer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown sparse tokenizer"):
        get_tokenizer("whitespace")
