"""A stage agent on the real broker gets every record once and in order, even when faust drops
records it fetched.

faust drops a fetched record whose offset is below its per-partition "read offset"; around a
rebalance that read offset can run ahead of the records it delivered (see
``stages/sequencing.py``). The test moves the read offset ahead by hand, which is exactly that
state, and checks that the sequencer notices and re-reads: in the middle of a partition (a later
record reveals the jump) and at its tail (nothing later comes; the watchdog finds it).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.types import TP

from tests.kafka_support import run_async
from tickerwire.core.settings import Settings
from tickerwire.stages.app import StageDeps, build_app
from tickerwire.stages.base import CHUNKS_TOPIC, InMsg

pytestmark = pytest.mark.kafka

TP0 = TP(CHUNKS_TOPIC, 0)


async def _produce(bootstrap: str, prefix: str, start: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                CHUNKS_TOPIC, b"{}", key=f"{prefix}-{start + i}".encode(), partition=0
            )
            for i in range(count)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _end_offset(bootstrap: str) -> int:
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await client.start()
    try:
        return int((await client.end_offsets([TP0]))[TP0])
    finally:
        await client.stop()


async def _wait(check: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {limit_s:.0f}s waiting for {what}")


async def _scenario(bootstrap: str, data_dir: Path) -> None:
    prefix = uuid.uuid4().hex[:8]
    seen: list[tuple[int, bytes]] = []  # (offset, key) of partition 0, in handling order

    async def record(batch: Sequence[InMsg]) -> None:
        seen.extend((m.offset, m.key or b"") for m in batch if m.partition == 0)

    def handlers(app: faust.App, table: Any) -> dict[str, Any]:
        return {"embed": record}

    settings = Settings(kafka_bootstrap=bootstrap, data_dir=data_dir)
    app = build_app(
        StageDeps(
            settings=settings,
            stages=("embed",),
            make_handlers=handlers,  # type: ignore[arg-type]
            app_id=f"seq-{prefix}",
        )
    )
    ready = asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    app.on_startup_finished = on_ready
    app.in_worker = True
    await app.start()
    try:
        await asyncio.wait_for(ready.wait(), 120)
        sequencer = type(app.consumer).ledger  # type: ignore[attr-defined]
        consumer: Any = app.consumer

        start = await _end_offset(bootstrap)
        await _produce(bootstrap, prefix, 0, 5)
        await _wait(lambda: sequencer.committable(TP0) == start + 5, 60, "the first records")

        # Middle: faust's read offset runs 30 ahead, so it drops the next 29 records it fetches.
        mid = start + 5
        consumer._read_offset[TP0] = mid + 29
        await _produce(bootstrap, prefix, 5, 60)
        await _wait(lambda: sequencer.committable(TP0) == mid + 60, 90, "the re-read (middle)")

        # Tail: every record of the next burst is dropped and nothing comes after it.
        tail = mid + 60
        consumer._read_offset[TP0] = tail + 100
        await _produce(bootstrap, prefix, 65, 10)
        await _wait(lambda: sequencer.committable(TP0) == tail + 10, 90, "the re-read (tail)")
    finally:
        await app.stop()

    ours = [(o, k) for o, k in seen if k.startswith(prefix.encode())]
    assert [o for o, _ in ours] == list(range(start, start + 75)), "once each, in offset order"
    assert [k for _, k in ours] == [f"{prefix}-{i}".encode() for i in range(75)]


def test_records_faust_drops_are_read_again_in_order(kafka_bootstrap: str, tmp_path: Path) -> None:
    run_async(lambda: _scenario(kafka_bootstrap, tmp_path / "data"))
