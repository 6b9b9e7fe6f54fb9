"""The query-log use case: turn searches, answers and ratings into learning-loop records.

Each record is built here (the question and comment through the document PII redactor, the API
key as a keyed hash) and handed to a :class:`LogSink`, which must never wait: the Kafka sink
(:mod:`tickerwire.adapters.query_log`) buffers, and drops and counts when the buffer is full.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from tickerwire.core.metrics import FEEDBACK_RECEIVED
from tickerwire.core.ports import Passage, ScoredHit, SearchMode
from tickerwire.core.records import (
    FeedbackRecord,
    LoggedCitation,
    LoggedHit,
    LoggedPassage,
    QueryLogRecord,
)
from tickerwire.core.topics import FEEDBACK_TOPIC, QUERIES_TOPIC
from tickerwire.pipeline.redact import redact

#: Hex characters of the keyed hash that stands for an API key (64 bits).
KEY_HASH_CHARS = 16


class LogSink(Protocol):
    """Where log records go; ``offer`` returns at once, False when the record was dropped."""

    def offer(self, topic: str, key: bytes, value: bytes) -> bool: ...


def key_hasher(salt: bytes | None = None) -> Callable[[str], str]:
    """HMAC-SHA256 of an API key under ``salt`` (random when None), truncated: it groups one
    caller's queries without the key ever being stored, and cannot be reversed by hashing
    guessed keys without the salt."""
    secret = salt if salt else secrets.token_bytes(32)

    def hash_key(api_key: str) -> str:
        digest = hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()
        return digest[:KEY_HASH_CHARS]

    return hash_key


def _now() -> datetime:
    return datetime.now(UTC)


class QueryRecorder:
    """Logs queries to tickerwire.queries and ratings to tickerwire.feedback through ``sink``."""

    def __init__(self, sink: LogSink, *, clock: Callable[[], datetime] = _now) -> None:
        self._sink = sink
        self._clock = clock

    def _offer(self, topic: str, query_id: str, value: bytes) -> bool:
        return self._sink.offer(topic, query_id.encode(), value)

    def search(
        self,
        query_id: str,
        question: str,
        *,
        mode: SearchMode,
        k: int,
        filters: dict[str, Any],
        understood: dict[str, Any] | None,
        hits: Sequence[ScoredHit],
        timings: dict[str, float],
        watermark: dict[str, str | None],
        key_hash: str | None,
    ) -> bool:
        """Log one search; False when the log dropped it."""
        red = redact(question)
        record = QueryLogRecord(
            query_id=query_id,
            endpoint="search",
            asked_at=self._clock(),
            question=red.text,
            redactions=red.counts,
            mode=mode,
            k=k,
            filters=filters,
            understood=understood,
            hits=_hits(hits),
            timings=timings,
            watermark=watermark,
            key_hash=key_hash,
        )
        return self._offer(QUERIES_TOPIC, query_id, record.to_bytes())

    def ask(
        self,
        question: str,
        final: dict[str, Any],
        *,
        mode: SearchMode,
        k: int,
        filters: dict[str, Any],
        hits: Sequence[ScoredHit],
        passages: Sequence[Passage],
        key_hash: str | None,
    ) -> bool:
        """Log one answer (the ``final`` data of /v1/ask); False when the log dropped it."""
        red = redact(question)
        query_id = str(final["query_id"])
        record = QueryLogRecord(
            query_id=query_id,
            endpoint="ask",
            asked_at=self._clock(),
            question=red.text,
            redactions=red.counts,
            mode=mode,
            k=k,
            filters=filters,
            understood=final.get("understood"),
            hits=_hits(hits),
            context=tuple(
                LoggedPassage(
                    n=p.n,
                    doc_id=p.doc_id,
                    chunk_id=p.chunk_id,
                    title=p.title,
                    published_at=p.published_at,
                    text=p.text,
                )
                for p in passages
            ),
            answer=str(final["answer"]),
            grounded=bool(final["grounded"]),
            refusal_reason=final.get("refusal_reason"),
            citations=tuple(
                LoggedCitation(n=c["n"], doc_id=c["doc_id"], chunk_id=c["chunk_id"])
                for c in final.get("citations", [])
            ),
            citations_dropped=int(final.get("citations_dropped") or 0),
            model=final.get("model"),
            timings=dict(final.get("timings") or {}),
            watermark=dict(final.get("watermark") or {}),
            key_hash=key_hash,
        )
        return self._offer(QUERIES_TOPIC, query_id, record.to_bytes())

    def feedback(
        self,
        query_id: str,
        rating: int,
        *,
        comment: str | None,
        corrected_answer: str | None,
        wrong_citations: Sequence[int],
        key_hash: str | None,
    ) -> bool:
        """Log one rating; False when the log dropped it (the caller should say so)."""
        record = FeedbackRecord.model_validate(
            {
                "query_id": query_id,
                "rating": rating,
                "given_at": self._clock(),
                "comment": redact(comment).text if comment else None,
                "corrected_answer": redact(corrected_answer).text if corrected_answer else None,
                "wrong_citations": tuple(sorted(set(wrong_citations))),
                "key_hash": key_hash,
            }
        )
        accepted = self._offer(FEEDBACK_TOPIC, query_id, record.to_bytes())
        if accepted:
            FEEDBACK_RECEIVED.labels(rating="up" if rating > 0 else "down").inc()
        return accepted


def _hits(hits: Sequence[ScoredHit]) -> tuple[LoggedHit, ...]:
    return tuple(
        LoggedHit(
            doc_id=str(h.payload.get("doc_id") or ""),
            chunk_id=str(h.payload.get("chunk_id") or h.id),
            score=float(h.score),
        )
        for h in hits
        if h.payload.get("doc_id")
    )
