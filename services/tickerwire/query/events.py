"""Index events (documents indexed or deleted) for the live feed of ``GET /v1/events``.

The index stage publishes to an :class:`EventBroadcaster` after a batch's writes are durable in
the index, so a subscriber never hears of a document that a search cannot yet find. Each
subscriber has a bounded queue; when a slow client lets it fill up, newer events are dropped for
that client alone and counted (``tickerwire_events_dropped_total``), never buffered without bound
and never slowing the index stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from tickerwire.core.metrics import EVENTS_DROPPED, EVENTS_PUBLISHED, EVENTS_SUBSCRIBERS
from tickerwire.core.ports import VectorIndex
from tickerwire.core.records import CommitRecord, VectorRecord

log = structlog.get_logger("tickerwire.query.events")

EventKind = Literal["indexed", "deleted"]

#: Events a subscriber may have waiting before newer ones are dropped for it.
DEFAULT_QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class IndexEvent:
    """One document indexed (a commit that lists chunks) or deleted (an empty commit)."""

    kind: EventKind
    data: dict[str, Any]

    def sse(self) -> str:
        """The event as one server-sent-events message."""
        return f"event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class Subscription:
    """One client's bounded queue of events; ``dropped`` counts what did not fit."""

    queue: asyncio.Queue[IndexEvent]
    dropped: int = 0

    async def next(self, wait_s: float) -> IndexEvent | None:
        """The next event, or None when none came within ``wait_s`` seconds."""
        try:
            async with asyncio.timeout(wait_s):
                return await self.queue.get()
        except TimeoutError:
            return None


@dataclass
class EventBroadcaster:
    """Fan-out of index events to any number of subscribers, each with a bounded queue."""

    queue_size: int = DEFAULT_QUEUE_SIZE
    _subscribers: set[Subscription] = field(default_factory=set)

    @property
    def subscribers(self) -> int:
        """How many clients are listening now."""
        return len(self._subscribers)

    def publish(self, event: IndexEvent) -> None:
        """Hand ``event`` to every subscriber; a full queue drops it for that subscriber."""
        EVENTS_PUBLISHED.labels(event=event.kind).inc()
        for sub in self._subscribers:
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped += 1
                EVENTS_DROPPED.inc()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription to the events published while the block runs."""
        sub = Subscription(queue=asyncio.Queue(maxsize=self.queue_size))
        self._subscribers.add(sub)
        EVENTS_SUBSCRIBERS.set(len(self._subscribers))
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)
            EVENTS_SUBSCRIBERS.set(len(self._subscribers))
            if sub.dropped:
                log.info("events_subscriber_dropped", dropped=sub.dropped)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def _indexed_data(doc_id: str, chunks: int, meta: dict[str, Any] | None) -> dict[str, Any]:
    meta = meta or {}
    return {
        "doc_id": doc_id,
        "title": meta.get("title"),
        "doc_type": meta.get("doc_type"),
        "tickers": list(meta.get("tickers") or []),
        "published_at": meta.get("published_at"),
        "indexed_at": _iso_now(),
        "chunks": chunks,
    }


def events_for_batch(
    records: Sequence[VectorRecord | CommitRecord],
    known: dict[str, dict[str, Any]] | None = None,
) -> list[IndexEvent]:
    """The events a durably applied batch stands for, one per commit record, in order.

    Document fields come from the batch's vector records of the same document, then from
    ``known`` (looked up in the index by the caller); they are null when neither has them.
    """
    meta: dict[str, dict[str, Any]] = dict(known or {})
    for rec in records:
        if isinstance(rec, VectorRecord):
            meta[rec.doc_id] = {
                "title": rec.title,
                "doc_type": rec.doc_type,
                "tickers": list(rec.tickers),
                "published_at": rec.published_at.isoformat(),
            }
    events: list[IndexEvent] = []
    for rec in records:
        if not isinstance(rec, CommitRecord):
            continue
        if rec.op == "delete" or not rec.chunk_ids:
            events.append(IndexEvent("deleted", {"doc_id": rec.doc_id, "indexed_at": _iso_now()}))
        else:
            events.append(
                IndexEvent(
                    "indexed", _indexed_data(rec.doc_id, len(rec.chunk_ids), meta.get(rec.doc_id))
                )
            )
    return events


def index_publisher(
    broadcaster: EventBroadcaster, index: VectorIndex
) -> Callable[[Sequence[VectorRecord | CommitRecord]], Awaitable[None]]:
    """The callback the index stage calls once a batch is durable: publish its events.

    With nobody listening it does nothing. A commit whose vectors came in an earlier batch (or
    an unchanged re-send, which carries no vectors) gets its title and tickers from the index.
    """

    async def publish(records: Sequence[VectorRecord | CommitRecord]) -> None:
        if not broadcaster.subscribers:
            return
        with_vectors = {r.doc_id for r in records if isinstance(r, VectorRecord)}
        missing = {
            r.doc_id
            for r in records
            if isinstance(r, CommitRecord) and r.chunk_ids and r.doc_id not in with_vectors
        }
        known: dict[str, dict[str, Any]] = {}
        for doc_id in sorted(missing):
            try:
                hits = await index.get_document(doc_id)
            except Exception:  # a lookup failing must not fail the stage: publish nulls
                log.warning("events_lookup_failed", doc_id=doc_id, exc_info=True)
                continue
            if hits:
                known[doc_id] = hits[0].payload
        for event in events_for_batch(records, known):
            broadcaster.publish(event)

    return publish
