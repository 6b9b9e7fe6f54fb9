"""BM25 sparse vectors: tokenization of financial text, weights, and stable term indices."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tickerwire.pipeline.sparse import BM25Encoder, BM25Params, light_stem, stable_hash


@pytest.fixture
def encoder() -> BM25Encoder:
    return BM25Encoder()


def test_tickers_numbers_and_percentages_stay_whole(encoder: BM25Encoder) -> None:
    terms = encoder.tokenize("$AAPL and BRK.B rose 12% to $4.5bn; margin -3.2% on 1,234.5 units")
    for term in ("aapl", "brk.b", "12%", "4.5bn", "3.2%", "1,234.5"):
        assert term in terms
    assert "and" not in terms and "on" not in terms  # stopwords


def test_filing_forms_and_compounds_keep_the_whole_and_the_parts(encoder: BM25Encoder) -> None:
    terms = encoder.tokenize("Our 10-K shows fixed-price contracts at AT&T")
    assert {"10-k", "fixed-price", "fixed", "price", "at&t"} <= set(terms)


def test_text_is_lowercased_and_nfkc_normalized(encoder: BM25Encoder) -> None:
    assert encoder.tokenize("ＲＥＶＥＮＵＥ Revenue") == ["revenue", "revenue"]


def test_negations_are_not_stopwords(encoder: BM25Encoder) -> None:
    assert "not" in encoder.tokenize("revenue did not rise")


def test_document_weights_follow_the_bm25_formula() -> None:
    params = BM25Params(k1=1.2, b=0.75, avgdl=4.0)
    enc = BM25Encoder(params)
    vec = enc.encode_document("revenue revenue growth margin")
    weights = dict(zip(vec.indices, vec.values, strict=True))
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 4.0)
    assert math.isclose(weights[enc.term_index("revenue")], 2 * 2.2 / (2 + norm))
    assert math.isclose(weights[enc.term_index("growth")], 1 * 2.2 / (1 + norm))


def test_indices_are_sorted_and_unique(encoder: BM25Encoder) -> None:
    vec = encoder.encode_document("b a c a b d e f g revenue revenue 2019 2019 12%")
    assert list(vec.indices) == sorted(set(vec.indices))
    assert all(v > 0 for v in vec.values)


def test_a_query_holds_one_per_unique_term(encoder: BM25Encoder) -> None:
    vec = encoder.encode_query("revenue revenue in 2019")
    assert vec.values == (1.0, 1.0)
    assert set(vec.indices) == {encoder.term_index("revenue"), encoder.term_index("2019")}


def test_empty_or_stopword_only_text_gives_an_empty_vector(encoder: BM25Encoder) -> None:
    assert encoder.encode_document("").indices == ()
    assert encoder.encode_query("the of and").indices == ()


def test_term_indices_are_stable_32_bit_across_processes() -> None:
    here = [stable_hash(t) for t in ("revenue", "aapl", "12%")]
    assert all(0 <= h < 2**32 for h in here)
    code = (
        "from tickerwire.pipeline.sparse import stable_hash;"
        "print([stable_hash(t) for t in ('revenue', 'aapl', '12%')])"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert other.stdout.strip() == str(here)


def test_the_same_term_in_query_and_document_shares_an_index(encoder: BM25Encoder) -> None:
    doc = encoder.encode_document("Total sales were $1,496.5 million in 2019")
    query = encoder.encode_query("total sales 2019")
    assert set(query.indices) <= set(doc.indices)


def test_light_stem_strips_plurals_only() -> None:
    assert light_stem("liabilities") == "liability"
    assert light_stem("assets") == "asset"
    assert light_stem("business") == "business"
    assert light_stem("status") == "status"


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="avgdl"):
        BM25Params(avgdl=0)


def test_the_bm25_encoder_is_the_one_sparse_encoder_port() -> None:
    from tickerwire.core.ports import SparseEncoder

    assert isinstance(BM25Encoder(), SparseEncoder)
