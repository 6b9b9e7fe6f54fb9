"""Pure pipeline steps: cleaning, redaction, chunking, and the per-document diff."""

from __future__ import annotations

import pytest
from tests.chunk_support import chunk_words, word_splitter, words

from tickerwire.pipeline.chunking import Chunk, chunk_id_for
from tickerwire.pipeline.clean import clean_document, normalize_text
from tickerwire.pipeline.diff import DocState, Outcome, live_state, plan_delete, plan_upsert
from tickerwire.pipeline.redact import redact


def test_normalize_applies_nfkc_and_drops_controls_and_boilerplate() -> None:
    raw = (
        "Revenue\u00a0rose  to \uff135 billion\x07.\r\n\r\n\r\n\r\n"
        "Click here to subscribe\nAll rights reserved."
    )
    assert normalize_text(raw) == "Revenue rose to 35 billion."


def test_html_keeps_main_text_and_table_rows() -> None:
    para = "<p>Nvidia reported record quarterly revenue driven by data center demand.</p>"
    html = (
        "<html><body><nav>Subscribe now for more</nav><article><h1>Results</h1>"
        + para * 3
        + "<table><tr><th>Item</th><th>Q3</th></tr><tr><td>Revenue</td><td>35.1</td></tr>"
        "</table></article></body></html>"
    )
    text = clean_document(html, "text/html")
    assert "Nvidia reported record quarterly revenue" in text
    assert "Revenue | 35.1" in text
    assert "<p>" not in text


@pytest.mark.parametrize(
    ("text", "kind", "placeholder"),
    [
        ("write to ir@acme-corp.com today", "email", "[EMAIL]"),
        ("call (212) 555-0142 now", "phone", "[PHONE]"),
        ("London desk +44 20 7946 0958.", "phone", "[PHONE]"),
        ("toll free 1-800-555-0199", "phone", "[PHONE]"),
        ("Berlin +49 30 901820", "phone", "[PHONE]"),
        ("SSN 123-45-6789 on file", "ssn", "[SSN]"),
        ("card 4111 1111 1111 1111 charged", "card", "[CARD]"),
        ("wire to GB82 WEST 1234 5698 7654 32 please", "iban", "[IBAN]"),
    ],
)
def test_redact_replaces_each_pii_kind(text: str, kind: str, placeholder: str) -> None:
    out = redact(text)
    assert placeholder in out.text
    assert out.counts == {kind: 1}


def test_redact_leaves_financial_figures_alone() -> None:
    text = (
        "Revenue 1,234,567 rose 12% to $35.08 billion on 2026-11-27; card 4111 1111 1111 1112. "
        "Fiscal 2019 2018 2017 | 1,452.4 | 44.1; accession 0001193125-26-123456; CUSIP 037833100."
    )
    out = redact(text)
    assert out.text == text
    assert out.counts == {}


def test_chunk_ids_are_content_addressed_and_title_prefixed() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(6))
    a = chunk_words(doc_id="d1", title="ACME 10-K", text=text, max_tokens=50)
    b = chunk_words(doc_id="d1", title="ACME 10-K", text=text, max_tokens=50)
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len(a) >= 2
    assert all(c.embed_text.startswith("ACME 10-K\n\n") for c in a)
    assert all(c.token_count <= 50 for c in a)
    assert a[0].chunk_id == chunk_id_for("d1", a[0].embed_text)
    assert [c.index for c in a] == list(range(len(a)))


def test_a_table_that_fits_stays_in_one_chunk() -> None:
    table = "\n".join(f"Row {i} | {i}.0 | {i * 2}.5" for i in range(5))
    text = "Intro " + "word " * 20 + "\n\n" + table + "\n\nOutro " + "word " * 20
    chunks = chunk_words(doc_id="d", title="", text=text, max_tokens=40)
    assert any(table in c.text for c in chunks)


def _chunks(doc_id: str, paragraphs: list[str]) -> list[Chunk]:
    return chunk_words(doc_id=doc_id, title="T", text="\n\n".join(paragraphs), max_tokens=12)


def test_plan_emits_only_changed_chunks_and_commits_all_ids() -> None:
    v1 = _chunks("d", ["alpha " * 8, "beta " * 8, "gamma " * 8])
    first = plan_upsert(None, version=1, content_hash="h1", meta_hash="m", chunks=v1)
    assert first.outcome is Outcome.NEW and len(first.emit) == 3
    assert first.new_state is not None
    v2 = _chunks("d", ["alpha " * 8, "BETA " * 8, "gamma " * 8])
    second = plan_upsert(first.new_state, version=2, content_hash="h2", meta_hash="m", chunks=v2)
    assert second.outcome is Outcome.UPDATED
    assert [c.text for c in second.emit] == [("BETA " * 8).strip()]
    assert second.commit_ids == tuple(c.chunk_id for c in v2)
    assert second.commit_ids[0] == v1[0].chunk_id


def test_plan_same_content_is_unchanged_and_older_version_is_stale() -> None:
    v1 = _chunks("d", ["alpha " * 8])
    state = DocState(
        version=5, content_hash="h", chunk_ids=tuple(c.chunk_id for c in v1), meta_hash="m"
    )
    assert plan_upsert(state, version=5, content_hash="h", meta_hash="m", chunks=v1).outcome is (
        Outcome.UNCHANGED
    )
    assert plan_upsert(state, version=4, content_hash="x", meta_hash="m", chunks=v1).outcome is (
        Outcome.STALE
    )
    assert plan_delete(state, version=4, now=0.0).outcome is Outcome.STALE


def test_a_metadata_change_reuses_every_chunk_instead_of_resending_it() -> None:
    v1 = _chunks("d", ["alpha " * 8, "beta " * 8])
    state = DocState(
        version=1, content_hash="h", chunk_ids=tuple(c.chunk_id for c in v1), meta_hash="m1"
    )
    plan = plan_upsert(state, version=2, content_hash="h2", meta_hash="m2", chunks=v1)
    assert plan.outcome is Outcome.UPDATED
    assert plan.emit == []
    assert plan.reused_ids == tuple(c.chunk_id for c in v1)


def test_delete_is_an_empty_commit_that_leaves_a_tombstone() -> None:
    plan = plan_delete(DocState(version=1, content_hash="h", chunk_ids=("a",)), version=2, now=9.0)
    assert plan.outcome is Outcome.DELETED
    assert plan.commit_ids == ()
    assert plan.new_state == DocState(2, "", (), deleted_at=9.0)
    assert DocState.from_json(DocState(1, "h", ("a",), "m").to_json()) == DocState(
        1, "h", ("a",), "m"
    )
    assert DocState.from_json(plan.new_state.to_json()) == plan.new_state


def test_a_tombstone_beats_upserts_up_to_its_version_until_it_expires() -> None:
    tomb = DocState(3, "", (), deleted_at=100.0)
    chunks = _chunks("d", ["alpha " * 8])
    for version in (2, 3):
        plan = plan_upsert(tomb, version=version, content_hash="h", meta_hash="m", chunks=chunks)
        assert plan.outcome is Outcome.STALE
    newer = plan_upsert(tomb, version=4, content_hash="h", meta_hash="m", chunks=chunks)
    assert newer.outcome is Outcome.NEW and len(newer.emit) == 1
    assert live_state(tomb, now=150.0, tombstone_retention_s=60.0) is tomb
    assert live_state(tomb, now=161.0, tombstone_retention_s=60.0) is None


@pytest.mark.parametrize("extra", [-1, 0, 1, 5])
def test_a_body_that_fits_or_not_is_chunked_as_the_splitter_alone_chunks_it(extra: int) -> None:
    # Budget 20 with a 2-word title header: the body fits in 18 words.
    body = " ".join(f"w{i}" for i in range(18 + extra))
    text = f"\n  {body}\t\n"
    chunks = chunk_words(doc_id="d", title="Two words", text=text, max_tokens=20)
    expected = [p.strip() for p in word_splitter(18, 0).chunks(text) if p.strip()]
    assert [c.text for c in chunks] == expected
    assert len(chunks) == (1 if extra <= 0 else 2)
    for i, c in enumerate(chunks):
        assert c.index == i
        assert c.embed_text == "Two words\n\n" + c.text
        assert c.chunk_id == chunk_id_for("d", c.embed_text)
        assert c.token_count == 2 + words(c.text) <= 20
