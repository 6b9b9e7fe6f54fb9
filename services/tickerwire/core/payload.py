"""The index payload: what every point stores next to its vectors, and what search hits show.

:class:`IndexPayload` is the one typed description of it, and :meth:`IndexPayload.to_dict` the
one place that turns it into the stored JSON object. The index stage builds it from a vector
record (:meth:`IndexPayload.from_vector`); benchmarks and tests build it field by field.
Readers get the stored object back as ``ScoredHit.payload``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from tickerwire.core.records import DocFacts, DocumentFields, VectorRecord, format_date_time

__all__ = ["IndexPayload", "document_payload", "reused_payload"]


@dataclass(frozen=True, slots=True)
class IndexPayload:
    """The payload of one chunk's point.

    Stored keys: ``doc_id``, ``chunk_id``, ``chunk_index``, ``version``, ``text``, ``title``,
    ``url``, ``source``, ``doc_type``, ``tickers`` (list, upper case), ``language``,
    ``published_at`` (RFC 3339), ``published_ts`` (epoch seconds, float), ``indexed_ts`` (epoch
    seconds, float), ``model``, and only when the document has them: ``company``,
    ``fiscal_period``, ``fiscal_year`` (int), and for ``market_stats`` ``price``, ``change``,
    ``change_pct`` and ``volume`` (floats; ``VectorIndex.top_by`` orders by them).
    """

    doc_id: str
    chunk_id: str
    chunk_index: int
    version: int
    text: str
    title: str
    url: str | None
    source: str
    doc_type: str
    tickers: Sequence[str]
    published_at: datetime
    indexed_ts: float
    language: str = "en"
    model: str = ""
    facts: DocFacts | None = None

    @classmethod
    def from_vector(cls, rec: VectorRecord, indexed_ts: float) -> IndexPayload:
        """The payload of ``rec``'s point, indexed at ``indexed_ts`` (epoch seconds)."""
        values = {name: getattr(rec, name) for name in _FROM_RECORD}
        return cls(chunk_id=str(rec.chunk_id), indexed_ts=indexed_ts, **values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the index stores (facts flattened in, unset facts left out)."""
        payload: dict[str, Any] = {
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "chunk_index": self.chunk_index,
            "text": self.text,
            "indexed_ts": float(self.indexed_ts),
            "model": self.model,
        }
        payload.update(document_payload(**{name: getattr(self, name) for name in _DOCUMENT}))
        return payload


#: The fields a vector record carries under the payload's names (all but the two computed ones).
_FROM_RECORD = tuple(
    f.name for f in fields(IndexPayload) if f.name not in {"chunk_id", "indexed_ts"}
)
#: The document's fields of the payload: what :func:`document_payload` takes.
_DOCUMENT = ("version", *DocumentFields.model_fields)


def document_payload(
    *,
    version: int,
    title: str,
    url: str | None,
    source: str,
    doc_type: str,
    tickers: Sequence[str],
    language: str,
    published_at: datetime,
    facts: DocFacts | None,
) -> dict[str, Any]:
    """The document's part of every chunk's payload: also what a new version that reuses a
    chunk writes into it in place (:func:`reused_payload`)."""
    payload: dict[str, Any] = {
        "version": version,
        "title": title,
        "url": url,
        "source": source,
        "doc_type": doc_type,
        "tickers": list(tickers),
        "language": language,
        "published_at": format_date_time(published_at),
        "published_ts": published_at.timestamp(),
    }
    if facts is not None:
        payload.update(facts.to_json_dict())
    return payload


def reused_payload(fields: DocumentFields, *, version: int, chunk_index: int) -> dict[str, Any]:
    """The payload fields a reused chunk gets from its new document version."""
    return {
        "chunk_index": chunk_index,
        **document_payload(version=version, **dict(fields)),
    }
