"""JSON views shared by the query endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from tickerwire.core.ports import Watermark


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def watermark_json(w: Watermark) -> dict[str, str | None]:
    """The watermark as RFC 3339 strings (null when the index is empty)."""
    return {"published_at": _iso(w.published_ts), "indexed_at": _iso(w.indexed_ts)}
