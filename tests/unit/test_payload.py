"""The index payload is built in one place and has the keys every reader relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tickerwire.core.payload import IndexPayload
from tickerwire.core.records import DocFacts, VectorRecord
from tickerwire.core.schemas import schema_dir

BASE_KEYS = {
    "doc_id",
    "chunk_id",
    "chunk_index",
    "version",
    "text",
    "title",
    "url",
    "source",
    "doc_type",
    "tickers",
    "language",
    "published_at",
    "published_ts",
    "indexed_ts",
    "model",
}


def _vector(**facts: object) -> VectorRecord:
    chunk = json.loads((schema_dir() / "examples" / "vector.v1.json").read_text())
    if facts:
        chunk["facts"] = facts
    return VectorRecord.from_bytes(json.dumps(chunk).encode())


def test_payload_of_a_vector_has_the_pinned_keys_and_types() -> None:
    rec = _vector()
    payload = IndexPayload.from_vector(rec, indexed_ts=1_800_000_000).to_dict()
    assert set(payload) == BASE_KEYS
    assert payload["chunk_id"] == str(rec.chunk_id)
    assert payload["tickers"] == list(rec.tickers)
    assert payload["published_ts"] == rec.published_at.timestamp()
    assert isinstance(payload["indexed_ts"], float)
    assert payload["published_at"].endswith("Z")
    assert datetime.fromisoformat(payload["published_at"]) == rec.published_at


def test_facts_are_flattened_into_the_payload_only_when_set() -> None:
    rec = _vector(company="Acme", fiscal_period="FY2026", fiscal_year=2026, price=3.5)
    payload = IndexPayload.from_vector(rec, indexed_ts=0.0).to_dict()
    assert set(payload) == BASE_KEYS | {"company", "fiscal_period", "fiscal_year", "price"}
    assert (payload["company"], payload["fiscal_year"], payload["price"]) == ("Acme", 2026, 3.5)


def test_a_payload_built_field_by_field_matches_one_built_from_a_vector() -> None:
    rec = _vector(volume=10.0)
    by_fields = IndexPayload(
        doc_id=rec.doc_id,
        chunk_id=str(rec.chunk_id),
        chunk_index=rec.chunk_index,
        version=rec.version,
        text=rec.text,
        title=rec.title,
        url=rec.url,
        source=rec.source,
        doc_type=rec.doc_type,
        tickers=rec.tickers,
        published_at=rec.published_at.astimezone(UTC),
        indexed_ts=1.0,
        language=rec.language,
        model=rec.model,
        facts=DocFacts(volume=10.0),
    )
    assert by_fields.to_dict() == IndexPayload.from_vector(rec, 1.0).to_dict()
