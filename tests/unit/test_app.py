"""faust wiring that needs no broker: the consumer the stages run on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import faust
from faust.types import TP
from tests.unit.test_sequencing import FakeLog

from tickerwire.adapters.faust_kafka import (
    FETCH_MAX_WAIT_MS,
    LedgerConsumer,
    PromptFetchConsumer,
    install_stage_consumer,
)
from tickerwire.core.settings import load_settings
from tickerwire.core.topics import CHUNKS_TOPIC
from tickerwire.stages.app import StageDeps, build_app
from tickerwire.stages.base import InMsg
from tickerwire.stages.sequencing import Sequencer

P0 = TP(CHUNKS_TOPIC, 0)
P1 = TP(CHUNKS_TOPIC, 1)


async def _ignore(batch: Sequence[InMsg]) -> None:
    return None


def _app(tmp_path: Path, fetch_max_wait_ms: int = 100) -> faust.App:
    settings = load_settings(
        kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, fetch_max_wait_ms=fetch_max_wait_ms
    )
    return build_app(
        StageDeps(
            settings=settings,
            stages=("embed",),
            make_handlers=lambda app, table: {"embed": _ignore},
        )
    )


async def test_stage_consumer_fetches_with_a_short_broker_wait(tmp_path: Path) -> None:
    app = _app(tmp_path, fetch_max_wait_ms=250)
    consumer = app.consumer
    assert isinstance(consumer, PromptFetchConsumer)
    assert isinstance(consumer, LedgerConsumer)
    assert isinstance(type(consumer).ledger, Sequencer)
    # The aiokafka consumer faust builds (not started: no broker is contacted).
    client = consumer._thread._create_worker_consumer(app.transport)
    try:
        assert client._fetch_max_wait_ms == 250
        assert FETCH_MAX_WAIT_MS == load_settings().fetch_max_wait_ms == 100
    finally:
        await client.stop()
        consumer._thread.thread_loop.close()  # made for the consumer thread, never started


async def test_stage_consumer_commits_exactly_the_sequenced_offsets(tmp_path: Path) -> None:
    app = _app(tmp_path)
    log = FakeLog(records={P0: list(range(10)), P1: list(range(10))})
    sequencer = Sequencer(log, {CHUNKS_TOPIC: "embed"})
    install_stage_consumer(app, sequencer)
    consumer = app.consumer
    committed: list[dict[TP, int]] = []

    async def commit(offsets: Mapping[TP, int]) -> bool:
        committed.append(dict(offsets))
        return True

    async def flush() -> None:
        return None

    consumer._commit = commit
    consumer.assignment = lambda: {P0, P1}
    app.producer.flush = flush

    first = await sequencer.admit([(P0, 0), (P0, 1), (P0, 2), (P1, 0)])
    later = await sequencer.admit([(P0, 3), (P0, 4)])
    # faust's own bookkeeping acks everything it handed over; the sequencer must win.
    consumer._acked[P0].extend(range(5))
    consumer._acked[P1].extend(range(1))
    assert await consumer.force_commit()
    assert committed == [{P0: 0, P1: 0}]  # nothing processed yet: the start positions

    sequencer.done(CHUNKS_TOPIC, first)
    assert await consumer.force_commit()
    assert committed[-1] == {P0: 3, P1: 1}  # the next offset to process, per partition

    sequencer.done(CHUNKS_TOPIC, later)
    assert await consumer.force_commit()
    assert committed[-1] == {P0: 5}  # P1 has nothing new
    consumer._thread.thread_loop.close()
