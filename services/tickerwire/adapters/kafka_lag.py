"""Consumer lag from the broker: each group's committed offsets against the partitions' ends.

``consumer_lag`` answers once; :class:`LagReader` keeps its clients open for periodic use (the
worker's lag metric); :class:`StageLagReader` sums it per stage for /v1/status. Lag is ``end
offset - committed offset`` for every partition the group has committed an offset on;
partitions the group never committed on are not in the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tickerwire.adapters.kafka_errors import check_login
from tickerwire.adapters.kafka_options import KafkaConnection, connection_options, describe
from tickerwire.core.errors import BrokerError

#: (group, topic, partition) -> records the group still has to consume there.
Lag = dict[tuple[str, str, int], int]


class LagReader:
    """An admin client (committed offsets) and a group-less consumer (end offsets)."""

    def __init__(self, bootstrap: KafkaConnection, *, timeout_s: float = 30.0) -> None:
        self._where = describe(bootstrap)
        self._options = connection_options(bootstrap)
        self._timeout = timeout_s
        self._admin = AIOKafkaAdminClient(**self._options, request_timeout_ms=int(timeout_s * 1000))
        self._consumer = AIOKafkaConsumer(
            **self._options,
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
            await check_login(self._options)  # a refused login or certificate is fatal
            raise BrokerError(f"cannot reach Kafka at {self._where}: {exc!r}") from exc
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
            raise BrokerError(f"consumer lag from {self._where} failed: {exc!r}") from exc
        return {
            (group, tp.topic, tp.partition): max(ends[tp] - offset, 0)
            for (group, tp), offset in committed.items()
        }


async def consumer_lag(bootstrap: KafkaConnection, groups: Iterable[str]) -> Lag:
    """Lag of ``groups`` keyed by (group, topic, partition): end offset minus committed offset."""
    reader = LagReader(bootstrap)
    await reader.start()
    try:
        return await reader.lag(groups)
    finally:
        await reader.close()


@dataclass(frozen=True, slots=True)
class StageLag:
    """One stage's lag in records (``None`` when its group has committed nothing yet)."""

    stage: str
    topic: str
    group: str | None
    records: int | None


class StageLagReader:
    """Each stage's lag, for /v1/status: one :class:`LagReader` kept open, answers cached.

    `tickerwire up` runs the three stages in one consumer group (``app_id``); `tickerwire worker
    STAGE` runs each in its own group (``app_id-STAGE``). A stage's lag is read from whichever of
    the two has committed offsets on its input topic (the per-stage group first). Calls are
    serialised and cached for ``ttl_s`` seconds, so a page polling /v1/status costs the broker
    little.
    """

    def __init__(
        self,
        bootstrap: KafkaConnection,
        app_id: str,
        stage_topics: Mapping[str, str],
        *,
        timeout_s: float = 5.0,
        ttl_s: float = 2.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._app_id = app_id
        self._stage_topics = dict(stage_topics)
        self._timeout = timeout_s
        self._ttl = ttl_s
        self._reader: LagReader | None = None
        self._lock = asyncio.Lock()
        self._cached: tuple[float, list[StageLag]] | None = None

    def _groups(self, stage: str) -> tuple[str, str]:
        return (f"{self._app_id}-{stage}", self._app_id)

    async def _read(self) -> list[StageLag]:
        if self._reader is None:
            reader = LagReader(self._bootstrap, timeout_s=self._timeout)
            await reader.start()
            self._reader = reader
        groups = {g for stage in self._stage_topics for g in self._groups(stage)}
        lag = await self._reader.lag(sorted(groups))
        out: list[StageLag] = []
        for stage, topic in self._stage_topics.items():
            for group in self._groups(stage):
                parts = [n for (g, t, _), n in lag.items() if g == group and t == topic]
                if parts:
                    out.append(StageLag(stage, topic, group, sum(parts)))
                    break
            else:
                out.append(StageLag(stage, topic, None, None))
        return out

    async def read(self) -> list[StageLag]:
        """Each stage's lag; BrokerError when Kafka does not answer within the timeout."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._cached is not None and loop.time() - self._cached[0] < self._ttl:
                return self._cached[1]
            try:
                lags = await self._read()
            except BrokerError:
                await self.aclose()  # the next read reconnects
                raise
            self._cached = (loop.time(), lags)
            return lags

    async def aclose(self) -> None:
        """Close the clients; idempotent (the next read reconnects)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
