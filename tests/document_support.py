"""Raw documents as producers write them: the JSON object of a valid upsert."""

from __future__ import annotations

from typing import Any


def raw_document(doc_id: str = "doc-1", **changes: Any) -> dict[str, Any]:
    """A valid ``raw-document/v1`` news upsert (version 1) of ``doc_id``, with ``changes``."""
    return {
        "schema": "raw-document/v1",
        "doc_id": doc_id,
        "op": "upsert",
        "version": 1,
        "source": "test",
        "doc_type": "news",
        "title": "Title",
        "body": "Body text.",
        "content_type": "text/plain",
        "published_at": "2026-11-27T10:00:00Z",
        "tickers": ["AAPL"],
    } | changes
