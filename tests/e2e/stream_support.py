"""Stream test helpers: a broker of the test's own, the fake OpenAI server on a thread, and
conditions to wait on (consumer lag, dead letters) instead of fixed settle sleeps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.fake_openai import FakeOpenAI
from tests.kafka_support import free_ports, run_async
from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs
from tickerwire.core.records import DlqRecord
from tickerwire.core.topics import DLQ_TOPIC, STAGE_INPUT
from tickerwire.evaluation.worker import TICKERWIRE
from tickerwire.localbroker import REPO_ROOT, LocalBroker


async def _partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    parts = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    assert parts, f"no partitions found for {topics}"
    return sorted(parts)


async def _lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    return sum((await _lag_by_partition(bootstrap, group, topics)).values())


async def _lag_by_partition(
    bootstrap: str, group: str, topics: Iterable[str]
) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        parts = await _partitions(bootstrap, topics)
        ends = await consumer.end_offsets(parts)
        committed = await admin.list_consumer_group_offsets(group, partitions=parts)
        # -1: nothing committed (the partition never had a record for the group to process)
        done = {tp: max(committed[tp].offset, 0) if tp in committed else 0 for tp in parts}
        return {tp: max(ends[tp] - done[tp], 0) for tp in parts}
    finally:
        await consumer.stop()
        await admin.close()


def stage_lag(bootstrap: str, group: str, topics: Iterable[str] | None = None) -> int:
    """Records of the stage topics the worker's group has not committed yet (0: caught up:
    every record produced so far is processed and its output is durable)."""
    names = list(topics) if topics is not None else list(STAGE_INPUT.values())
    return run_async(lambda: _lag(bootstrap, group, names))


def stage_lag_by_partition(bootstrap: str, group: str) -> dict[str, int]:
    """:func:`stage_lag` per ``topic:partition`` (for a failure message)."""
    lag = run_async(lambda: _lag_by_partition(bootstrap, group, STAGE_INPUT.values()))
    return {f"{tp.topic}:{tp.partition}": n for tp, n in lag.items()}


@contextmanager
def own_local_broker(data_dir: Path) -> Iterator[LocalBroker]:
    """:func:`own_broker`, yielding the :class:`LocalBroker` itself (to stop, kill, restart)."""
    port, cport = free_ports(2)
    broker = LocalBroker(
        port, data_dir, REPO_ROOT / ".tickerwire" / "kafka" / "libs", "512m", controller_port=cport
    )
    broker.up(timeout=180)
    try:
        run_async(lambda: ensure_topics(broker.bootstrap, load_topic_specs()))
        yield broker
    finally:
        broker.down()


@contextmanager
def own_broker(data_dir: Path) -> Iterator[str]:
    """A broker of the test's own (no other test's records in its topics), with every topic."""
    with own_local_broker(data_dir) as broker:
        yield broker.bootstrap


def run_eval_cli(
    data: Path, out: Path, tmp_path: Path, *extra: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``tickerwire eval --dataset data --output out`` on a broker of its own (the session
    broker's topics hold other tests' documents, whose company names the eval's query
    understanding would learn and apply); state under ``tmp_path``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TICKERWIRE_DATA_DIR": str(tmp_path / "state")}
    with own_broker(tmp_path / "kafka") as bootstrap:
        args = ["eval", "--dataset", str(data), "--output", str(out), "--bootstrap", bootstrap]
        return subprocess.run(
            [TICKERWIRE, *args, *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@contextmanager
def fake_openai_server(**kwargs: Any) -> Iterator[FakeOpenAI]:
    """A :class:`FakeOpenAI` served from its own event loop on a thread, for sync e2e tests."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-openai", daemon=True)
    thread.start()
    server = FakeOpenAI(**kwargs)
    try:
        asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(30)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


async def _dead_letters(bootstrap: str, prefix: str) -> list[DlqRecord]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await _partitions(bootstrap, [DLQ_TOPIC])
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[DlqRecord] = []
        positions = {tp: await consumer.position(tp) for tp in parts}
        while any(positions[tp] < ends[tp] for tp in parts):
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            out += [DlqRecord.from_bytes(r.value) for recs in batch.values() for r in recs]
            positions = {tp: await consumer.position(tp) for tp in parts}
        return [d for d in out if (d.doc_id or "").startswith(prefix)]
    finally:
        await consumer.stop()


def dead_letters(bootstrap: str, prefix: str) -> list[DlqRecord]:
    """Every dead letter so far about a document whose id starts with ``prefix``."""
    return run_async(lambda: _dead_letters(bootstrap, prefix))
