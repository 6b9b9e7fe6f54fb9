"""Reads a whole topic under a consumer group of its own, from the beginning or from saved
positions: the source of ``tickerwire reindex``.

The partitions are assigned by hand (no group rebalancing: one reader at a time), and nothing is
committed automatically: the caller commits the positions of what it has finished, so that the
group's lag (``kafka-consumer-groups``, Grafana) shows how far a rebuild has come.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tickerwire.adapters.kafka_admin import topic_partitions
from tickerwire.adapters.kafka_errors import kafka_errors
from tickerwire.adapters.kafka_options import KafkaConnection, connection_options
from tickerwire.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ReplayedRecord:
    """One record read back from the topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int | None


class TopicReplay:
    """Replays ``topic`` in order per partition; an async context manager."""

    def __init__(self, target: KafkaConnection, topic: str, group_id: str) -> None:
        self.topic = topic
        self.group_id = group_id
        self._consumer = AIOKafkaConsumer(
            **connection_options(target),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self._target = target
        self._tps: list[TopicPartition] = []

    async def __aenter__(self) -> TopicReplay:
        parts = await topic_partitions(self._target, self.topic)
        if not parts:
            raise ConfigError(f"topic {self.topic} does not exist: nothing to rebuild from")
        with kafka_errors():
            await self._consumer.start()
        self._tps = [TopicPartition(self.topic, p) for p in parts]
        self._consumer.assign(self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # aiokafka#647: stopping right after start can raise from the coordinator's task.
        with contextlib.suppress(Exception):
            await self._consumer.stop()

    @property
    def partitions(self) -> list[int]:
        """The topic's partitions."""
        return [tp.partition for tp in self._tps]

    async def seek(self, positions: Mapping[int, int]) -> dict[int, int]:
        """Start each partition at ``positions`` (the next offset to read); a partition without
        one starts at its beginning. Returns the positions the reader starts from."""
        start: dict[int, int] = {}
        firsts = await self._consumer.beginning_offsets(self._tps)
        for tp in self._tps:
            offset = max(positions.get(tp.partition, 0), firsts[tp])
            self._consumer.seek(tp, offset)
            start[tp.partition] = offset
        return start

    async def end_offsets(self) -> dict[int, int]:
        """The offset after the last record of each partition, now."""
        ends = await self._consumer.end_offsets(self._tps)
        return {tp.partition: ends[tp] for tp in self._tps}

    async def position(self, partition: int) -> int:
        """The next offset the reader will read from ``partition``."""
        return int(await self._consumer.position(TopicPartition(self.topic, partition)))

    async def read(self, max_records: int, timeout_ms: int = 500) -> list[ReplayedRecord]:
        """Up to ``max_records`` records (in offset order within each partition)."""
        batch = await self._consumer.getmany(
            *self._tps, timeout_ms=timeout_ms, max_records=max_records
        )
        return [
            ReplayedRecord(
                partition=tp.partition,
                offset=m.offset,
                key=m.key,
                value=m.value or b"",
                headers=tuple((k, v) for k, v in m.headers),
                timestamp_ms=m.timestamp,
            )
            for tp, messages in batch.items()
            for m in messages
        ]

    async def commit(self, positions: Mapping[int, int]) -> None:
        """Commit ``positions`` (next offsets to read) to the reader's group."""
        offsets = {
            TopicPartition(self.topic, p): OffsetAndMetadata(off, "")
            for p, off in positions.items()
        }
        if offsets:
            with kafka_errors():
                await self._consumer.commit(offsets)
