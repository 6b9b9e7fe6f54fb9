"""The index payload is built in one place and has the keys every reader relies on."""

from __future__ import annotations

import json
from datetime import datetime

from tickerwire.core.payload import IndexPayload
from tickerwire.core.records import VectorRecord
from tickerwire.core.schemas import schema_dir
from tickerwire.query.search import HIT_FIELDS

#: Every field a search hit shows (query/search.py), and what the index adds for filtering,
#: ordering and provenance.
BASE_KEYS = {
    *HIT_FIELDS,
    "version",
    "language",
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
