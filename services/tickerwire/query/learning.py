"""The query-log use case: turn searches, answers and ratings into learning-loop records.

Each record is built here (the question and comment through the document PII redactor, the API
key as a keyed hash) and handed to a :class:`LogSink`, which must never wait: the Kafka sink
(:mod:`tickerwire.adapters.query_log`) buffers, and drops and counts when the buffer is full.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic
import structlog

from tickerwire.core.metrics import FEEDBACK_RECEIVED, QUERY_LOG_RECORDS
from tickerwire.core.ports import ScoredHit, SearchMode
from tickerwire.core.records import FeedbackRecord, QueryLogRecord
from tickerwire.core.records._base import pydantic_reason
from tickerwire.core.topics import FEEDBACK_TOPIC, QUERIES_TOPIC
from tickerwire.pipeline.redact import redact
from tickerwire.query.ask import AskEvent
from tickerwire.query.search import SearchResult

log = structlog.get_logger("tickerwire.query.learning")

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


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """What the caller asked: the question (redacted when logged), mode, ``k``, filters (as
    JSON), and the keyed hash of its API key (None for an open API)."""

    question: str
    mode: SearchMode
    k: int
    filters: dict[str, Any]
    key_hash: str | None


class QueryRecorder:
    """Logs queries to tickerwire.queries and ratings to tickerwire.feedback through ``sink``."""

    def __init__(self, sink: LogSink, *, clock: Callable[[], datetime] = _now) -> None:
        self._sink = sink
        self._clock = clock

    def _log_query(self, request: LoggedRequest, **fields: Any) -> bool:
        """Build and offer one query record; a record the schema refuses (say, an id longer
        than it allows) is logged and counted as failed, never raised into the query."""
        red = redact(request.question)
        try:
            record = QueryLogRecord.model_validate(
                {
                    "asked_at": self._clock(),
                    "question": red.text,
                    "redactions": red.counts,
                    "mode": request.mode,
                    "k": request.k,
                    "filters": request.filters,
                    "key_hash": request.key_hash,
                    **fields,
                }
            )
        except pydantic.ValidationError as exc:
            QUERY_LOG_RECORDS.labels(topic=QUERIES_TOPIC, outcome="failed").inc()
            log.warning("query_log_record_invalid", reason=pydantic_reason(exc))
            return False
        return self._sink.offer(QUERIES_TOPIC, record.query_id.encode(), record.to_bytes())

    def search(
        self,
        request: LoggedRequest,
        query_id: str,
        result: SearchResult,
        watermark: dict[str, str | None],
    ) -> bool:
        """Log one search; False when the log dropped it."""
        return self._log_query(
            request,
            query_id=query_id,
            endpoint="search",
            understood=result.understood,
            hits=_hits(result.hits),
            timings=result.timings,
            watermark=watermark,
        )

    def ask(self, request: LoggedRequest, final: AskEvent) -> bool:
        """Log one answer (the ``final`` event of /v1/ask); False when the log dropped it."""
        data = final.data
        return self._log_query(
            request,
            query_id=str(data["query_id"]),
            endpoint="ask",
            understood=data.get("understood"),
            hits=_hits(final.hits),
            context=[
                {k: v for k, v in dataclasses.asdict(p).items() if k != "units"}
                for p in final.passages
            ],
            answer=str(data["answer"]),
            grounded=bool(data["grounded"]),
            refusal_reason=data.get("refusal_reason"),
            citations=[
                {"n": c["n"], "doc_id": c["doc_id"], "chunk_id": c["chunk_id"]}
                for c in data.get("citations", [])
            ],
            citations_dropped=int(data.get("citations_dropped") or 0),
            model=data.get("model"),
            timings=dict(data.get("timings") or {}),
            watermark=dict(data.get("watermark") or {}),
        )

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
        accepted = self._sink.offer(FEEDBACK_TOPIC, query_id.encode(), record.to_bytes())
        if accepted:
            FEEDBACK_RECEIVED.labels(rating="up" if rating > 0 else "down").inc()
        return accepted


def _hits(hits: Sequence[ScoredHit]) -> list[dict[str, Any]]:
    return [
        {
            "doc_id": str(h.payload["doc_id"]),
            "chunk_id": str(h.payload.get("chunk_id") or h.id),
            "score": float(h.score),
        }
        for h in hits
        if h.payload.get("doc_id")
    ]
