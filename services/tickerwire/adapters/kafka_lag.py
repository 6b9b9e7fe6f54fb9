"""Consumer lag from the broker: each group's committed offsets against the partitions' ends.

``consumer_lag`` answers once; :class:`LagReader` keeps its clients open for periodic use (the
worker's lag metric). Lag is ``end offset - committed offset`` for every partition the group has
committed an offset on; partitions the group never committed on are not in the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tickerwire.core.errors import BrokerError

#: (group, topic, partition) -> records the group still has to consume there.
Lag = dict[tuple[str, str, int], int]


class LagReader:
    """An admin client (committed offsets) and a group-less consumer (end offsets)."""

    def __init__(self, bootstrap: str, *, timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._timeout = timeout_s
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            request_timeout_ms=int(timeout_s * 1000),
        )
        self._started = False

    async def start(self) -> None:
        """Connect both clients; BrokerError when the broker cannot be reached."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._admin.start()
                await self._consumer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await self.close()
            raise BrokerError(f"cannot reach Kafka at {self._bootstrap}: {exc!r}") from exc
        self._started = True

    async def close(self) -> None:
        """Close both clients; idempotent."""
        self._started = False
        await self._consumer.stop()
        await self._admin.close()

    async def lag(self, groups: Iterable[str]) -> Lag:
        """Lag of every partition each of ``groups`` has a committed offset on."""
        if not self._started:
            raise RuntimeError("LagReader.start() first")
        committed: dict[tuple[str, TopicPartition], int] = {}
        try:
            async with asyncio.timeout(self._timeout):
                for group in groups:
                    offsets = await self._admin.list_consumer_group_offsets(group)
                    for tp, meta in offsets.items():
                        if meta.offset >= 0:
                            committed[(group, tp)] = meta.offset
                parts = sorted({tp for _, tp in committed})
                ends = await self._consumer.end_offsets(parts) if parts else {}
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerError(f"consumer lag from {self._bootstrap} failed: {exc!r}") from exc
        return {
            (group, tp.topic, tp.partition): max(ends[tp] - offset, 0)
            for (group, tp), offset in committed.items()
        }


async def consumer_lag(bootstrap: str, groups: Iterable[str]) -> Lag:
    """Lag of ``groups`` keyed by (group, topic, partition): end offset minus committed offset."""
    reader = LagReader(bootstrap)
    await reader.start()
    try:
        return await reader.lag(groups)
    finally:
        await reader.close()
