"""Context-rich chunk headers: metadata header, filing sections (pipeline/chunking.py)."""

from __future__ import annotations

from typing import Literal

from tests.chunk_support import chunk_words, word_splitter, words

from tickerwire.core.records import RawDocument
from tickerwire.pipeline.chunking import (
    SECTION_HEADING_CHARS,
    metadata_header,
    section_headings,
)
from tickerwire.stages.preprocess import ChunkerConfig, prepare


def test_metadata_header_names_company_tickers_form_period_and_title() -> None:
    meta = {"company": "3M", "form": "10-K", "fiscal_period": "FY2018", "page": 60}
    header = metadata_header(title="", doc_type="filing", tickers=["MMM"], metadata=meta)
    assert header == "3M (MMM) | 10-K | FY2018"
    titled = metadata_header(title=" Annual  report ", doc_type="filing", tickers=[], metadata=meta)
    assert titled == "3M | 10-K | FY2018 | Annual report"


def test_metadata_header_without_company_or_period() -> None:
    # A ticker already in the company name is not repeated; no company: the tickers name it.
    assert (
        metadata_header(title="", doc_type=None, tickers=["AMZN"], metadata={"company": "AMZN"})
        == "AMZN"
    )
    assert metadata_header(title="", doc_type="market_stats", tickers=["NVDA"], metadata={}) == (
        "NVDA | market stats"
    )
    # Nothing but a document type: the title alone, or nothing at all.
    assert metadata_header(title="  Acme  news ", doc_type="news", tickers=[], metadata={}) == (
        "Acme news"
    )
    assert metadata_header(title="", doc_type="filing", tickers=[], metadata={}) == ""
    assert metadata_header(
        title="", doc_type="filing", tickers=[], metadata={"fiscal_period": "FY2019"}
    ) == ("filing | FY2019")


def test_section_headings_find_filing_items() -> None:
    text = (
        "Intro\n"
        "Item 7. Management's Discussion and Analysis of Financial Condition and Results of "
        "Operations of the Company and its subsidiaries\n"
        "body\n"
        "ITEM 7A \n \nQuantitative and Qualitative Disclosures About Market Risk\n"
        "Item 8 45\n"
        "the item 9 in a sentence is not a heading\n"
    )
    found = [h for _, h in section_headings(text)]
    assert found[0].startswith("Item 7. Management's Discussion")
    assert len(found[0]) <= SECTION_HEADING_CHARS
    assert found[1] == "Item 7A. Quantitative and Qualitative Disclosures About Market"
    assert found[2] == "Item 8"  # a table-of-contents row: the page number is not a name
    assert len(found) == 3


def embed_texts(text: str, max_tokens: int, header: str) -> list[str]:
    """Embedded texts of chunk_document (word counts as tokens), with a title it must ignore."""
    chunks = chunk_words(
        doc_id="d", title="ignored title", text=text, max_tokens=max_tokens, header=header
    )
    return [c.embed_text for c in chunks]


def test_chunk_document_uses_the_given_header_for_every_chunk() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    texts = embed_texts(text, 8, "ACME (ACM) | 10-K | FY2020")
    assert len(texts) > 1
    assert all(t.startswith("ACME (ACM) | 10-K | FY2020\n\n") for t in texts)
    assert all("ignored" not in t for t in texts)
    # An empty header means no header at all, not the title.
    assert embed_texts("one two", 8, "") == ["one two"]


def test_chunk_document_with_sections_names_the_item_each_chunk_is_in() -> None:
    body = " ".join(f"w{i}" for i in range(30))
    text = (
        f"Cover page text\n\nItem 7. Management's Discussion\n\n{body}\n\n"
        f"Item 8. Financial Statements\n\n{body}"
    )
    chunks = chunk_words(
        doc_id="d", title="", text=text, max_tokens=60, header="ACME | 10-K | FY2020", sections=True
    )
    headers = [c.embed_text.split("\n\n", 1)[0] for c in chunks]
    assert headers[0] in (
        "ACME | 10-K | FY2020",
        "ACME | 10-K | FY2020 | Item 7. Management's Discussion",
    )
    assert "ACME | 10-K | FY2020 | Item 7. Management's Discussion" in headers
    assert headers[-1] == "ACME | 10-K | FY2020 | Item 8. Financial Statements"
    assert all(c.token_count <= 60 for c in chunks)
    assert all(not c.text.startswith("ACME") for c in chunks)  # the header is not in the text


def _filing(period: str) -> RawDocument:
    return RawDocument.model_validate(
        {
            "doc_id": "3M_2018_10K_p059",
            "op": "upsert",
            "version": 1,
            "source": "filings",
            "doc_type": "filing",
            "title": "3M 10-K, page 60",
            "body": "Item 8. Financial Statements\n\nPurchases of property, plant and equipment",
            "content_type": "text/plain",
            "published_at": "2019-02-07T00:00:00Z",
            "tickers": ["MMM"],
            "metadata": {"company": "3M", "form": "10-K", "fiscal_period": period},
        }
    )


def _chunker(header: Literal["title", "metadata"], sections: bool) -> ChunkerConfig:
    return ChunkerConfig(
        make_splitter=word_splitter,
        count_tokens=words,
        max_tokens=60,
        overlap=0,
        header=header,
        sections=sections,
    )


def test_prepare_puts_the_metadata_header_before_each_chunk() -> None:
    prepared = prepare(_filing("FY2018"), _chunker("metadata", sections=True))
    assert [c.embed_text.split("\n\n", 1)[0] for c in prepared.chunks] == [
        "3M (MMM) | 10-K | FY2018 | 3M 10-K, page 60 | Item 8. Financial Statements"
    ]
    titled = prepare(_filing("FY2018"), _chunker("title", sections=False))
    assert titled.chunks[0].embed_text.startswith("3M 10-K, page 60\n\n")


def test_prepare_rechunks_when_only_the_header_metadata_changes() -> None:
    # A corrected period must reach the embedded header, not only the payload's facts.
    chunker = _chunker("metadata", sections=False)
    before, after = prepare(_filing("FY2017"), chunker), prepare(_filing("FY2018"), chunker)
    assert before.content_hash != after.content_hash
    assert before.chunks[0].chunk_id != after.chunks[0].chunk_id
    # With the title header the embedded text does not hold the period: the fiscal facts still
    # change (the payload is updated), but the chunks keep their ids, so nothing is re-embedded.
    plain = _chunker("title", sections=False)
    old, new = prepare(_filing("FY2017"), plain), prepare(_filing("FY2018"), plain)
    assert old.meta_hash != new.meta_hash
    assert [c.chunk_id for c in old.chunks] == [c.chunk_id for c in new.chunks]
