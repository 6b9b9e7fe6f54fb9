"""Per-partition sequencing: every stage processes each partition strictly in offset order, once
per assignment, and commits only offsets it has processed.

Why not faust's own bookkeeping: faust can drop records it has already fetched. Around a
rebalance or a stop it skips buffered events of the old generation, and its fetch loop can move
its read offset past records it never delivered; records behind that read offset are then
dropped as "already read". Its commit bookkeeping starts from the lowest acknowledged offset, and
treats any jump in fetched offsets as a gap that counts as acknowledged. Together this committed
past records no stage had processed (seen here as documents missing after a ``kill -9`` or a
SIGTERM restart) or stopped committing a partition for good.

So the agents own the offsets. A :class:`Sequencer` admits a partition's records only in order:

- the first record after an assignment must be at the group's committed offset (or at the log
  start when nothing is committed);
- a record below the next expected offset was already processed and is skipped (a redelivery);
- a record above it is a jump. The broker is asked for the first record at or after the expected
  offset. If there is none before the jump (compaction, retention, transaction markers), the
  record is admitted. Otherwise the consumer seeks back, and the partition's records are skipped
  until the missing one arrives again.

Each batch's admitted offsets become committable only after the batch is processed (its output
durable), and the stages' consumer (``tickerwire.adapters.faust_kafka.LedgerConsumer``) commits
exactly those. A watchdog catches records that were
fetched but never delivered at the tail of a partition, where no later record reveals the jump.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from faust.types import TP

from tickerwire.core.errors import TickerwireError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import OFFSET_GAPS, REDELIVERED
from tickerwire.stages.retry import DEFAULT_POLICY, RetryPolicy

log = get_logger("tickerwire.stages.sequencing")


class PartitionLog(Protocol):
    """What the sequencer asks of Kafka about one partition.

    A broker or consumer that is away raises a retriable TickerwireError
    (``BrokerUnavailableError``); ``tickerwire.adapters.faust_kafka.FaustPartitionLog`` is the
    implementation.
    """

    async def committed(self, tp: TP) -> int | None:
        """The group's committed offset (the next record to process), or None."""
        ...

    async def log_start(self, tp: TP) -> int:
        """The first offset still in the log."""
        ...

    async def first_at_or_after(self, tp: TP, offset: int) -> int | None:
        """The offset of the first record at or after ``offset`` (the log end if there is
        none); None when the broker could not tell."""
        ...

    async def position(self, tp: TP) -> int | None:
        """The consumer's fetch position."""
        ...

    async def seek(self, tp: TP, offset: int) -> None:
        """Make the consumer fetch the partition again from ``offset``."""
        ...


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted record; processing it moves the partition's commit position past it."""

    tp: TP
    offset: int
    epoch: int


@dataclass(slots=True)
class _Partition:
    epoch: int
    next: int  # the next offset to admit
    done: int  # the commit position: every record before it is processed
    resync_at: float | None = None  # when the consumer was last sent back to ``next``
    checked_empty_to: int | None = None  # watchdog: proven no records in [next, this)


class Sequencer:
    """In-order, once-per-assignment admission of records, and the offsets that may be
    committed. One per worker process; each topic belongs to one stage."""

    def __init__(
        self,
        log_: PartitionLog,
        stages: Mapping[str, str],
        *,
        resync_after: float = 5.0,
        idle_after: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._log = log_
        self._retry = retry
        self._stages = dict(stages)  # topic -> stage name
        self._resync_after = resync_after
        self._idle_after = idle_after
        self._clock = clock
        self._parts: dict[TP, _Partition] = {}
        self._epoch = 0
        self._busy: dict[str, bool] = {}  # topic -> a batch is being processed
        self._halted = False
        self._last_admit: dict[str, float] = {}

    def owns(self, topic: str) -> bool:
        """Whether the sequencer, not faust, decides this topic's commit offsets."""
        return topic in self._stages

    def tracked(self) -> list[TP]:
        return list(self._parts)

    def committable(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``: every record before it has been processed."""
        part = self._parts.get(tp)
        return None if part is None else part.done

    def assigned(self, tps: Iterable[TP]) -> None:
        """A new assignment: forget partitions this worker no longer owns.

        A partition kept across the rebalance keeps its position, so records that the
        rebalance makes faust fetch again are recognised as already processed.
        """
        keep = set(tps)
        for tp in [tp for tp in self._parts if tp not in keep]:
            del self._parts[tp]

    def halt(self) -> None:
        """The worker is stopping after a fatal error: admit nothing more, so no commit moves
        past the batch that failed (it and everything after it are consumed again)."""
        self._halted = True

    async def admit(self, records: Sequence[tuple[TP, int]]) -> list[Ticket | None]:
        """For each (partition, offset), in delivery order: a ticket to process it, or None to
        skip it (already processed, or a record that must first be preceded by missing ones)."""
        if self._halted:
            return [None] * len(records)
        now = self._clock()
        out: list[Ticket | None] = []
        for tp, offset in records:
            part = self._parts.get(tp) or await self._start(tp, now)
            self._last_admit[tp.topic] = now
            ticket = await self._admit_one(tp, part, offset, now)
            if ticket is not None:
                self._busy[tp.topic] = True
            out.append(ticket)
        return out

    def done(self, topic: str, tickets: Iterable[Ticket | None]) -> None:
        """The batch holding these tickets (of one topic) is processed: its output is durable."""
        for t in tickets:
            if t is None:
                continue
            part = self._parts.get(t.tp)
            if part is not None and part.epoch == t.epoch and t.offset >= part.done:
                part.done = t.offset + 1
        self._busy[topic] = False
        self._last_admit[topic] = self._clock()

    async def _start(self, tp: TP, now: float) -> _Partition:
        async def lookup() -> int:
            committed = await self._log.committed(tp)
            return committed if committed is not None else await self._log.log_start(tp)

        # The broker is away: wait for it, holding the batch.
        start = await self._retry.call(
            lookup,
            stage=self._stages.get(tp.topic, tp.topic),
            event="partition_offset_lookup_failed",
        )
        self._epoch += 1
        part = _Partition(epoch=self._epoch, next=start, done=start)
        self._parts[tp] = part
        log.info("partition_sequence_started", topic=tp.topic, partition=tp.partition, at=start)
        return part

    async def _admit_one(self, tp: TP, part: _Partition, offset: int, now: float) -> Ticket | None:
        stage = self._stages.get(tp.topic, tp.topic)
        if offset < part.next:
            REDELIVERED.labels(stage=stage).inc()
            return None
        if offset > part.next:
            if self._resyncing(part, now):
                return None  # still waiting for the re-read to reach part.next
            first = await self._log.first_at_or_after(tp, part.next)
            if first is None or first < offset:
                await self._resync(tp, part, first, offset, now)
                return None
            OFFSET_GAPS.labels(stage=stage, kind="empty").inc()
        part.next = offset + 1
        part.resync_at = None
        part.checked_empty_to = None
        return Ticket(tp, offset, part.epoch)

    def _resyncing(self, part: _Partition, now: float) -> bool:
        """A re-read was asked for recently: wait for it before asking again."""
        return part.resync_at is not None and now - part.resync_at < self._resync_after

    async def _resync(
        self, tp: TP, part: _Partition, first: int | None, seen: int | None, now: float
    ) -> None:
        stage = self._stages.get(tp.topic, tp.topic)
        target = part.next if first is None else max(first, part.next)
        OFFSET_GAPS.labels(stage=stage, kind="undelivered").inc()
        log.warning(
            "undelivered_records_reread",
            stage=stage,
            topic=tp.topic,
            partition=tp.partition,
            expected=part.next,
            first_record=first,
            delivered=seen,
        )
        part.next = target
        part.resync_at = now
        try:
            await self._log.seek(tp, target)
        except TickerwireError as exc:  # the broker is away: tried again after resync_after
            if not exc.retriable:
                raise
            log.warning("reread_seek_failed", topic=tp.topic, error=str(exc))

    async def watch(self) -> None:
        """Re-read records fetched but never delivered when nothing later reveals them.

        Looks only at topics whose agent is idle, so records still waiting in faust's buffers
        behind a long batch are not mistaken for lost ones.
        """
        if self._halted:
            return
        now = self._clock()
        for tp, part in list(self._parts.items()):
            topic = tp.topic
            if self._busy.get(topic) or now - self._last_admit.get(topic, now) < self._idle_after:
                continue
            if self._resyncing(part, now):
                continue
            try:
                pos = await self._log.position(tp)
                if pos is None or pos <= part.next or part.checked_empty_to == pos:
                    continue
                first = await self._log.first_at_or_after(tp, part.next)
                if first is not None and first >= pos:
                    part.checked_empty_to = pos
                    continue
                if self._parts.get(tp) is part:
                    await self._resync(tp, part, first, None, now)
            except TickerwireError as exc:  # a rebalance moved it; try later
                if not exc.retriable:
                    raise
                log.info("sequence_watch_skipped", topic=topic, partition=tp.partition, error=exc)
