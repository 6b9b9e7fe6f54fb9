"""The sequencer admits each partition's records once, in offset order, and commits only
processed offsets; jumps are checked against the records the log really holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from faust.types import TP

from tickerwire.core.errors import BrokerUnavailableError
from tickerwire.stages.sequencing import Sequencer, Ticket

T = "tickerwire.docs.chunks"
P0 = TP(T, 0)
P1 = TP(T, 1)


@dataclass
class FakeLog:
    """A partition log: which offsets hold records, the committed offsets, the consumer's
    fetch position and the seeks asked for."""

    records: dict[TP, list[int]] = field(default_factory=dict)
    committed_at: dict[TP, int] = field(default_factory=dict)
    positions: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    probes: int = 0

    async def committed(self, tp: TP) -> int | None:
        return self.committed_at.get(tp)

    async def log_start(self, tp: TP) -> int:
        return min(self.records.get(tp, [0]))

    async def first_at_or_after(self, tp: TP, offset: int) -> int | None:
        self.probes += 1
        held = [o for o in self.records.get(tp, []) if o >= offset]
        return min(held) if held else max(self.records.get(tp, [-1])) + 1

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def admitted(tickets: list[Ticket | None]) -> list[int | None]:
    return [None if t is None else t.offset for t in tickets]


def run(log: FakeLog, clock: Clock | None = None) -> Sequencer:
    return Sequencer(log, {T: "embed"}, clock=clock or Clock())


def test_in_order_records_are_admitted_and_committed_only_when_done() -> None:
    log = FakeLog(records={P0: list(range(10))})
    seq = run(log)
    tickets = asyncio.run(seq.admit([(P0, 0), (P0, 1), (P0, 2)]))
    assert admitted(tickets) == [0, 1, 2]
    assert seq.committable(P0) == 0  # nothing processed yet
    seq.done(T, tickets)
    assert seq.committable(P0) == 3
    assert log.probes == 0 and log.seeks == []


def test_starts_at_the_committed_offset_and_skips_redeliveries() -> None:
    log = FakeLog(records={P0: list(range(20))}, committed_at={P0: 5})
    seq = run(log)
    # a rebalance re-reads from an older position: records before 5 are already processed
    tickets = asyncio.run(seq.admit([(P0, 3), (P0, 4), (P0, 5), (P0, 6)]))
    assert admitted(tickets) == [None, None, 5, 6]
    seq.done(T, tickets)
    again = asyncio.run(seq.admit([(P0, 5), (P0, 6), (P0, 7)]))
    assert admitted(again) == [None, None, 7]


def test_a_jump_over_records_never_delivered_seeks_back_and_waits_for_them() -> None:
    clock = Clock()
    log = FakeLog(records={P0: list(range(100))})
    seq = run(log, clock)
    first = asyncio.run(seq.admit([(P0, 0), (P0, 1)]))
    seq.done(T, first)
    # faust dropped 2..9: 10 arrives next
    jumped = asyncio.run(seq.admit([(P0, 10), (P0, 11), (P1, 0)]))
    assert admitted(jumped) == [None, None, 0]
    assert log.seeks == [(P0, 2)]
    assert log.probes == 1  # 11 is dropped without asking again
    seq.done(T, jumped)
    assert seq.committable(P0) == 2  # never past the missing records
    # the re-read delivers 2.. in order; stale buffered ones before it are skipped
    reread = asyncio.run(seq.admit([(P0, 12), (P0, 2), (P0, 3)]))
    assert admitted(reread) == [None, 2, 3]
    seq.done(T, reread)
    assert seq.committable(P0) == 4


def test_a_jump_over_offsets_without_records_is_admitted() -> None:
    # compaction (or transaction markers) left no records at 3..6
    log = FakeLog(records={P0: [0, 1, 2, 7, 8]})
    seq = run(log)
    tickets = asyncio.run(seq.admit([(P0, 0), (P0, 1), (P0, 2), (P0, 7), (P0, 8)]))
    assert admitted(tickets) == [0, 1, 2, 7, 8]
    seq.done(T, tickets)
    assert seq.committable(P0) == 9
    assert log.seeks == []


def test_a_partly_empty_jump_seeks_to_the_first_real_record() -> None:
    log = FakeLog(records={P0: [0, 1, 5, 6, 7, 8]})
    seq = run(log)
    tickets = asyncio.run(seq.admit([(P0, 0), (P0, 1), (P0, 7)]))
    assert admitted(tickets) == [0, 1, None]
    assert log.seeks == [(P0, 5)]
    more = asyncio.run(seq.admit([(P0, 5), (P0, 6), (P0, 7)]))
    assert admitted(more) == [5, 6, 7]


def test_resync_is_asked_again_when_the_reread_does_not_come() -> None:
    clock = Clock()
    log = FakeLog(records={P0: list(range(50))})
    seq = Sequencer(log, {T: "embed"}, clock=clock, resync_after=5.0)
    asyncio.run(seq.admit([(P0, 0), (P0, 10)]))
    assert log.seeks == [(P0, 1)]
    clock.now += 1
    asyncio.run(seq.admit([(P0, 11)]))
    assert log.seeks == [(P0, 1)]
    clock.now += 5
    asyncio.run(seq.admit([(P0, 12)]))
    assert log.seeks == [(P0, 1), (P0, 1)]


def test_a_reassignment_forgets_lost_partitions_and_ignores_their_late_batches() -> None:
    log = FakeLog(records={P0: list(range(10)), P1: list(range(10))})
    seq = run(log)
    tickets = asyncio.run(seq.admit([(P0, 0), (P1, 0)]))
    seq.assigned({P1})  # P0 went to another worker while the batch was processed
    seq.done(T, tickets)
    assert seq.committable(P0) is None
    assert seq.committable(P1) == 1
    # P0 comes back later: it starts again from what the group committed meanwhile
    log.committed_at[P0] = 7
    back = asyncio.run(seq.admit([(P0, 7)]))
    assert admitted(back) == [7]


def test_watch_rereads_undelivered_records_at_an_idle_tail() -> None:
    clock = Clock()
    log = FakeLog(records={P0: list(range(10))})
    seq = Sequencer(log, {T: "embed"}, clock=clock, idle_after=3.0)
    tickets = asyncio.run(seq.admit([(P0, 0), (P0, 1)]))
    seq.done(T, tickets)
    log.positions[P0] = 10  # the consumer fetched to the end, but 2..9 never arrived
    asyncio.run(seq.watch())
    assert log.seeks == []  # not idle long enough yet
    clock.now += 4
    asyncio.run(seq.watch())
    assert log.seeks == [(P0, 2)]


def test_watch_leaves_an_idle_partition_alone_when_the_rest_is_empty_or_busy() -> None:
    clock = Clock()
    log = FakeLog(records={P0: [0, 1, 9]})
    seq = Sequencer(log, {T: "embed"}, clock=clock, idle_after=3.0)
    tickets = asyncio.run(seq.admit([(P0, 0), (P0, 1)]))
    seq.done(T, tickets)
    log.positions[P0] = 9  # 2..8 hold no records
    clock.now += 4
    asyncio.run(seq.watch())
    asyncio.run(seq.watch())
    assert log.seeks == [] and log.probes == 1
    # a batch in flight: records may still sit in faust's buffer behind it
    log.positions[P0] = 10
    assert admitted(asyncio.run(seq.admit([(P0, 9)]))) == [9]  # probed: 2..8 are empty
    clock.now += 10
    asyncio.run(seq.watch())
    assert log.seeks == [] and log.probes == 2


def test_a_failing_offset_lookup_is_retried_and_a_failing_seek_is_asked_again() -> None:
    class Flaky(FakeLog):
        lookups = 0
        failing_seeks = 1

        async def committed(self, tp: TP) -> int | None:
            self.lookups += 1
            if self.lookups == 1:
                raise BrokerUnavailableError("broker away")
            return await super().committed(tp)

        async def seek(self, tp: TP, offset: int) -> None:
            if self.failing_seeks:
                self.failing_seeks -= 1
                raise BrokerUnavailableError("broker away")
            await super().seek(tp, offset)

    clock = Clock()
    log = Flaky(records={P0: list(range(20))})
    seq = Sequencer(log, {T: "embed"}, clock=clock, resync_after=5.0)
    assert admitted(asyncio.run(seq.admit([(P0, 0), (P0, 5)]))) == [0, None]
    assert log.lookups == 2 and log.seeks == []  # the seek failed
    clock.now += 6
    assert admitted(asyncio.run(seq.admit([(P0, 6)]))) == [None]
    assert log.seeks == [(P0, 1)]
