"""The index stage: upsert vectors in batches and apply commits (delete what a commit omits).

Kafka offsets move only after the index has acknowledged every write of the batch, so a crash
replays the batch; upserts by content-addressed id and commit deletes are idempotent, which is also
why the batch path may retry a whole batch after a transient index fault.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from tickerwire.core.errors import PermanentError
from tickerwire.core.metrics import (
    FRESHNESS_PUBLISHED_SECONDS,
    FRESHNESS_SECONDS,
    INDEX_COMMITS,
    STAGE_RECORDS,
    STAGE_SECONDS,
)
from tickerwire.core.payload import IndexPayload, reused_payload
from tickerwire.core.ports import Point, SparseVector, VectorIndex
from tickerwire.core.records import CommitRecord, VectorRecord, parse_record
from tickerwire.stages.base import DeadLetters, InMsg, OutMsg, Sender

log = structlog.get_logger("tickerwire.stages.index")


def to_point(rec: VectorRecord, indexed_ts: float) -> Point:
    """The index point for a vector record; the payload is what search results show."""
    return Point(
        id=str(rec.chunk_id),
        dense=rec.dense,
        sparse=SparseVector(indices=rec.sparse.indices, values=rec.sparse.values),
        payload=IndexPayload.from_vector(rec, indexed_ts).to_dict(),
    )


class IndexStage:
    """Writes vector records to the index and applies commit records in order."""

    stage = "index"

    def __init__(
        self,
        *,
        index: VectorIndex,
        sender: Sender,
        on_applied: Callable[[Sequence[VectorRecord | CommitRecord]], Awaitable[None]]
        | None = None,
    ) -> None:
        self._index = index
        self._sender = sender
        self._dead = DeadLetters("index")
        #: called with a batch's records once its writes are durable (the live event feed).
        self._on_applied = on_applied
        #: monotonic time of the last batch handled; the maintenance policy waits for quiet.
        self.last_activity = time.monotonic()

    async def handle(self, batch: Sequence[InMsg]) -> None:
        """Upsert all vectors of the batch, then apply its commits in order.

        A commit's keep-list is widened by the ids of the same document's vectors that come
        after it in the batch, so applying all upserts first gives the same result as applying
        the records one by one.
        """
        self.last_activity = time.monotonic()
        with STAGE_SECONDS.labels(stage=self.stage).time():
            dead: list[OutMsg] = []
            records: list[VectorRecord | CommitRecord] = []
            for msg in batch:
                try:
                    rec = parse_record(msg.value)
                except PermanentError as exc:
                    dead.append(self._dead.message(msg, exc))
                    continue
                if isinstance(rec, VectorRecord | CommitRecord):
                    records.append(rec)
                else:
                    dead.append(
                        self._dead.message(msg, PermanentError(f"unexpected {rec.schema_} record"))
                    )
            now = time.time()
            points: dict[str, Point] = {}
            later: dict[str, set[str]] = {}
            commits: list[tuple[CommitRecord, set[str]]] = []
            for rec in reversed(records):
                if isinstance(rec, VectorRecord):
                    later.setdefault(rec.doc_id, set()).add(str(rec.chunk_id))
                else:
                    keep = {str(c) for c in rec.chunk_ids} | later.get(rec.doc_id, set())
                    commits.append((rec, keep))
            for rec in records:
                if isinstance(rec, VectorRecord):
                    points[str(rec.chunk_id)] = to_point(rec, now)
            commits.reverse()
            if points:
                batch_points = list(points.values())
                await self._index.upsert(batch_points)
            if commits:
                await self._apply(commits)
                await self._refresh_reused([c for c, _ in commits])
            if self._on_applied is not None and commits:
                try:
                    await self._on_applied(records)
                except Exception:  # the live feed failing must never stop indexing
                    log.warning("on_applied_failed", exc_info=True)
            STAGE_RECORDS.labels(stage=self.stage, outcome="ok").inc(len(records))
            if dead:
                await self._sender.send_all(dead)
        self.last_activity = time.monotonic()

    async def _refresh_reused(self, commits: Sequence[CommitRecord]) -> None:
        """Write each commit's document fields and new positions into the chunks it reused
        (after the deletes: a chunk a later commit of the batch dropped is skipped)."""
        updates: list[tuple[str, dict[str, Any]]] = []
        for commit in commits:
            if commit.document is None or not commit.reused:
                continue
            position = {chunk_id: i for i, chunk_id in enumerate(commit.chunk_ids)}
            updates.extend(
                (
                    str(chunk_id),
                    reused_payload(
                        commit.document, version=commit.version, chunk_index=position[chunk_id]
                    ),
                )
                for chunk_id in commit.reused
            )
        if updates:
            await self._index.refresh_payloads(updates)

    async def _apply(self, commits: list[tuple[CommitRecord, set[str]]]) -> None:
        """Apply the batch's commits in order, in one index call."""
        ops = [(c.doc_id, sorted(keep)) for c, keep in commits]
        removed = await self._index.apply_commits(ops)
        INDEX_COMMITS.labels(backend=self._index.backend).inc(len(commits))
        now = datetime.now(UTC).timestamp()
        for commit, _ in commits:
            FRESHNESS_SECONDS.observe(max(now - commit.produced_at.timestamp(), 0.0))
            if commit.published_at is not None and commit.op != "delete":
                FRESHNESS_PUBLISHED_SECONDS.observe(max(now - commit.published_at.timestamp(), 0.0))
        log.debug("commits_applied", commits=len(commits), removed=removed)
