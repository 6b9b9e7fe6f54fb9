"""The join agent: feedback joined to its query, written to the compacted examples topic.

One faust agent reads tickerwire.queries and tickerwire.feedback (both keyed by query_id, with the
same partitions, so both halves of a query meet in the same partition) and keeps what it has
seen of each query in a Table. The decisions are :mod:`tickerwire.pipeline.feedback_join`; this
module is the glue. A timer drops entries untouched for ``feedback_retention_s``; feedback whose
query never came is counted then (``tickerwire_feedback_expired_total``).
"""

from __future__ import annotations

import time
from typing import Any

import faust
import structlog

from tickerwire.adapters.faust_kafka import FaustSender
from tickerwire.core.errors import PermanentError
from tickerwire.core.metrics import EXAMPLES_WRITTEN, FEEDBACK_EXPIRED, FEEDBACK_REFUSED_DOWN
from tickerwire.core.records import FeedbackRecord, QueryLogRecord, parse_record
from tickerwire.core.settings import Settings
from tickerwire.core.topics import EXAMPLES_TOPIC, FEEDBACK_TOPIC, QUERIES_TOPIC
from tickerwire.pipeline.feedback_join import JoinEntry, expired, join
from tickerwire.stages.base import OutMsg, Sender
from tickerwire.stages.retry import DEFAULT_POLICY

log = structlog.get_logger("tickerwire.stages.feedback")

#: Longest pause between two sweeps of expired entries (seconds).
MAX_SWEEP_INTERVAL_S = 60.0


class FeedbackJoin:
    """Folds query and feedback records into a table, and sends the examples they decide."""

    def __init__(self, *, table: Any, sender: Sender, retention_s: float) -> None:
        """``table``: a mapping of query_id bytes to :class:`JoinEntry` bytes (a faust Table)."""
        self._table = table
        self._sender = sender
        self._retention_s = retention_s

    async def handle(self, key: bytes | None, value: bytes | None, now: float) -> None:
        """Fold one record; an unreadable or keyless one is logged and skipped."""
        try:
            record = parse_record(value or b"")
        except PermanentError as exc:
            log.warning("join_record_unreadable", reason=exc.reason)
            return
        if not isinstance(record, QueryLogRecord | FeedbackRecord):
            log.warning("join_record_unexpected", schema=type(record).__name__)
            return
        key = record.query_id.encode()
        stored = self._table.get(key)
        step = join(JoinEntry.from_bytes(stored) if stored else None, record, now)
        self._table[key] = step.entry.to_bytes()
        example = step.example
        if example is None:
            return
        msg = OutMsg(EXAMPLES_TOPIC, key, example.to_bytes())
        # The entry is stored already; the example must land too, or a rating would be lost.
        await DEFAULT_POLICY.until_sent(
            lambda: self._sender.send_all([msg]), stage="feedback", event="example_send_failed"
        )
        EXAMPLES_WRITTEN.labels(kind=example.kind, reason=example.reason).inc()
        if isinstance(record, FeedbackRecord) and record.rating < 0 and example.reason == "refused":
            FEEDBACK_REFUSED_DOWN.inc()

    def sweep(self, now: float) -> int:
        """Drop entries older than the retention; returns how many were dropped."""
        dropped = 0
        for key, value in list(self._table.items()):
            entry = JoinEntry.from_bytes(value)
            if expired(entry, now, self._retention_s):
                if entry.query is None and entry.feedback is not None:
                    FEEDBACK_EXPIRED.inc()
                del self._table[key]
                dropped += 1
        return dropped


def register_join_agent(app: faust.App, settings: Settings) -> FeedbackJoin:
    """Add the join agent, its table and its sweep timer to ``app``."""
    from tickerwire.stages.app import bytes_table

    table = bytes_table(
        app,
        "recent_queries",
        settings,
        "What the join has seen of each recent query id: the query, the latest feedback.",
    )
    joiner = FeedbackJoin(
        table=table, sender=FaustSender(app), retention_s=settings.feedback_retention_s
    )
    source = app.topic(
        QUERIES_TOPIC,
        FEEDBACK_TOPIC,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka_partitions,
    )

    async def feedback_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            value = event.value
            await joiner.handle(event.key, value if isinstance(value, bytes) else None, time.time())

    app.agent(source, name="tickerwire.feedback", concurrency=1)(feedback_agent)

    async def sweep() -> None:
        dropped = joiner.sweep(time.time())
        if dropped:
            log.info("join_entries_expired", dropped=dropped)

    interval = min(MAX_SWEEP_INTERVAL_S, settings.feedback_retention_s / 4)
    app.timer(interval, name="tickerwire.feedback_sweep")(sweep)
    return joiner
