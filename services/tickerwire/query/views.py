"""JSON views shared by the query endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from tickerwire.core.ports import Watermark


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def watermark_json(w: Watermark) -> dict[str, str | None]:
    """The watermark as RFC 3339 strings (null when the index is empty)."""
    return {"published_at": _iso(w.published_ts), "indexed_at": _iso(w.indexed_ts)}


class ErrorOut(BaseModel):
    """Why a request failed: a sentence, or FastAPI's list of invalid fields."""

    detail: str | list[dict[str, Any]]


_ERRORS = {
    "401": "missing or invalid API key",
    "404": "no such document",
    "413": "request body over the size limit",
    "422": "invalid request: the detail names the field",
    "429": "rate limit exceeded; see Retry-After",
    "502": "the answer model failed",
    "503": "not available in this process, or for now (see the detail)",
}


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error status codes a route may answer with."""
    return {code: {"model": ErrorOut, "description": _ERRORS[code]} for code in codes}
