"""Consumer lag per stage: the end offsets of a stage's input topic minus what its group committed.

`tickerwire up` runs the three stages in one consumer group (``app_id``); `tickerwire worker STAGE`
runs each in its own group (``app_id-STAGE``). A stage's lag is read from whichever of the two
groups has committed offsets on its input topic (the per-stage group first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from tickerwire.core.errors import BrokerError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import CONSUMER_LAG

__all__ = ["StageLag", "StageLagReader"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StageLag:
    """One stage's lag in records (``None`` when its group has committed nothing yet)."""

    stage: str
    topic: str
    group: str | None
    records: int | None


class StageLagReader:
    """Reads committed and end offsets with one long-lived admin client and consumer.

    ``stage_topics`` maps a stage name to its input topic. Calls are serialised and the answer
    is cached for ``ttl_s`` seconds, so a page polling /v1/status costs the broker little.
    """

    def __init__(
        self,
        bootstrap: str,
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
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._cached: tuple[float, list[StageLag]] | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, request_timeout_ms=int(self._timeout * 1000)
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                request_timeout_ms=int(self._timeout * 1000),
            )
            try:
                await admin.start()
                await consumer.start()
            except (KafkaError, OSError) as exc:
                await admin.close()
                await consumer.stop()
                raise BrokerError(f"cannot reach Kafka at {self._bootstrap}: {exc!r}") from exc
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def _committed(
        self, admin: AIOKafkaAdminClient, group: str, parts: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        offsets = await admin.list_consumer_group_offsets(group, partitions=parts)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def _read(self) -> list[StageLag]:
        admin, consumer = await self._clients()
        out: list[StageLag] = []
        described = await admin.describe_topics(sorted(set(self._stage_topics.values())))
        partitions = {
            entry["topic"]: sorted(int(p["partition"]) for p in entry.get("partitions", []))
            for entry in described
            if entry.get("error_code", 0) == 0
        }
        for stage, topic in self._stage_topics.items():
            parts = [TopicPartition(topic, p) for p in partitions.get(topic, [])]
            if not parts:
                out.append(StageLag(stage, topic, None, None))
                continue
            ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
            group: str | None = None
            committed: dict[TopicPartition, int] = {}
            for candidate in (f"{self._app_id}-{stage}", self._app_id):
                committed = await self._committed(admin, candidate, parts)
                if committed:
                    group = candidate
                    break
            if group is None:
                out.append(StageLag(stage, topic, None, None))
                continue
            total = 0
            for tp in parts:
                lag = max(ends.get(tp, 0) - committed.get(tp, 0), 0)
                CONSUMER_LAG.labels(stage=stage, topic=topic, partition=str(tp.partition)).set(lag)
                total += lag
            out.append(StageLag(stage, topic, group, total))
        return out

    async def read(self) -> list[StageLag]:
        """Each stage's lag; BrokerError when Kafka does not answer within the timeout."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if self._cached is not None and loop.time() - self._cached[0] < self._ttl:
                return self._cached[1]
            try:
                async with asyncio.timeout(self._timeout):
                    lags = await self._read()
            except (KafkaError, OSError, TimeoutError) as exc:
                await self.aclose()
                msg = f"consumer lag unavailable from {self._bootstrap}: {exc!r}"
                raise BrokerError(msg) from exc
            self._cached = (loop.time(), lags)
            return lags

    async def aclose(self) -> None:
        """Close the clients; idempotent (the next read reconnects)."""
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()
