"""Conditions to wait on in stream tests, instead of fixed settle sleeps."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.kafka_support import run_async
from tickerwire.core.topics import STAGE_INPUT


async def _lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata
        parts = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        ends = await consumer.end_offsets(parts)
        committed = await admin.list_consumer_group_offsets(group, partitions=parts)
        return sum(
            max(ends[tp] - (committed[tp].offset if tp in committed else 0), 0) for tp in parts
        )
    finally:
        await consumer.stop()
        await admin.close()


def stage_lag(bootstrap: str, group: str, topics: Iterable[str] | None = None) -> int:
    """Records of the stage topics the worker's group has not committed yet (0: caught up:
    every record produced so far is processed and its output is durable)."""
    names = list(topics) if topics is not None else list(STAGE_INPUT.values())
    return run_async(lambda: _lag(bootstrap, group, names))
