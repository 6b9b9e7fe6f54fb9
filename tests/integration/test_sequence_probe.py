"""The sequencer's probe asks the real broker which offsets hold records.

A transaction's commit marker takes an offset that no consumer ever receives, which is the same
kind of jump compaction and retention make: the probe must tell it from records a consumer
skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from tests.kafka_support import run_async
from tickerwire.adapters.faust_kafka import FaustPartitionLog

pytestmark = pytest.mark.kafka


async def _write_with_a_marker(bootstrap: str, topic: str) -> None:
    """Offsets 0 (plain), 1–2 (one transaction), 3 (its commit marker), 4 (plain)."""
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    tx = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"probe-{topic}")
    await plain.start()
    await tx.start()
    try:
        await plain.send_and_wait(topic, b"a", key=b"k", partition=0)
        async with tx.transaction():
            await tx.send(topic, b"b", key=b"k", partition=0)
            await tx.send(topic, b"c", key=b"k", partition=0)
        await _wait_for_end(bootstrap, topic, 4)  # the broker writes the marker after the commit
        await plain.send_and_wait(topic, b"d", key=b"k", partition=0)
    finally:
        await tx.stop()
        await plain.stop()


async def _wait_for_end(bootstrap: str, topic: str, end: int, timeout_s: float = 30.0) -> None:
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await client.start()
    tp = TopicPartition(topic, 0)
    try:
        deadline = time.monotonic() + timeout_s
        while int((await client.end_offsets([tp]))[tp]) < end:
            assert time.monotonic() < deadline, f"the log end of {topic} never reached {end}"
            await asyncio.sleep(0.1)
    finally:
        await client.stop()


def test_probe_finds_the_first_record_at_or_after_an_offset(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    (topic,) = kafka_topics()
    run_async(lambda: _write_with_a_marker(kafka_bootstrap, topic))
    probe = FaustPartitionLog(app=None, bootstrap=kafka_bootstrap)
    tp = TP(topic, 0)

    async def ask(offset: int) -> int | None:
        return await probe.first_at_or_after(tp, offset)

    assert run_async(lambda: ask(0)) == 0
    assert run_async(lambda: ask(2)) == 2
    assert run_async(lambda: ask(3)) == 4  # the marker holds no record
    assert run_async(lambda: ask(5)) == 5  # the log end: nothing there yet
