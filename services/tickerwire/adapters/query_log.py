"""The query log's Kafka side: a bounded buffer and one background sender, and a topic reader.

A query hands its record to :meth:`KafkaQueryLog.offer`, which never waits: the record goes into
a bounded in-memory buffer, or, when the buffer is full (the broker is slow or away), it is
dropped and counted (``tickerwire_query_log_records_total{outcome="dropped"}``). One background
task drains the buffer into an aiokafka producer; while Kafka is unreachable it reconnects with
backoff, and records it could not send are counted as ``failed``. So a query is never slowed or
failed by the log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from tickerwire.adapters.kafka_admin import topic_partitions
from tickerwire.adapters.kafka_options import client_options
from tickerwire.core.metrics import QUERY_LOG_BUFFER, QUERY_LOG_RECORDS
from tickerwire.core.settings import Settings

log = structlog.get_logger("tickerwire.adapters.query_log")

#: Records sent in one round before the sender waits for their acknowledgements.
_ROUND = 256
#: How long one round may wait for Kafka before its records count as failed.
_SEND_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class LogItem:
    """One record for a topic: key and value bytes."""

    topic: str
    key: bytes
    value: bytes


class KafkaQueryLog:
    """A non-blocking, bounded, lossy sink of log records to Kafka; an async context manager.

    The sender starts with the first :meth:`offer` (on the caller's event loop) and stops in
    :meth:`aclose`, which gives what is still buffered a short while to be sent.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        maxsize: int | None = None,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self._settings = settings
        self._queue: asyncio.Queue[LogItem] = asyncio.Queue(
            maxsize=maxsize or settings.query_log_buffer
        )
        self._factory = producer_factory or self._producer
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self._settings),
            acks=1,
            linger_ms=20,
            request_timeout_ms=int(_SEND_TIMEOUT_S * 1000),
        )

    async def __aenter__(self) -> KafkaQueryLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def buffered(self) -> int:
        """Records waiting for Kafka."""
        return self._queue.qsize()

    def offer(self, topic: str, key: bytes, value: bytes) -> bool:
        """Buffer one record for Kafka without waiting; False (and counted) when it was dropped."""
        if self._closed:
            return False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="query-log-sender"
            )
        try:
            self._queue.put_nowait(LogItem(topic, key, value))
        except asyncio.QueueFull:
            self.dropped += 1
            QUERY_LOG_RECORDS.labels(topic=topic, outcome="dropped").inc()
            return False
        QUERY_LOG_BUFFER.set(self._queue.qsize())
        return True

    async def aclose(self, flush_s: float = 2.0) -> None:
        """Stop the sender after up to ``flush_s`` seconds of sending what is buffered;
        idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), flush_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.5, max=10),
            retry=retry_if_exception_type((KafkaError, OSError)),
        )
        async for attempt in retrying:
            with attempt:
                await self._send_while_connected()

    async def _send_while_connected(self) -> None:
        producer = self._factory()
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < _ROUND and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                QUERY_LOG_BUFFER.set(self._queue.qsize())
                try:
                    await self._send(producer, batch)
                finally:
                    for _ in batch:
                        self._queue.task_done()
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, batch: list[LogItem]) -> None:
        try:
            async with asyncio.timeout(_SEND_TIMEOUT_S):
                futures = [await producer.send(i.topic, i.value, key=i.key) for i in batch]
                results = await asyncio.gather(*futures, return_exceptions=True)
        except (TimeoutError, KafkaError) as exc:
            for item in batch:
                QUERY_LOG_RECORDS.labels(topic=item.topic, outcome="failed").inc()
            log.warning("query_log_send_failed", records=len(batch), error=repr(exc))
            raise KafkaError(f"query log send failed: {exc!r}") from exc
        for item, result in zip(batch, results, strict=True):
            outcome = "failed" if isinstance(result, BaseException) else "sent"
            QUERY_LOG_RECORDS.labels(topic=item.topic, outcome=outcome).inc()


async def read_topic(settings: Settings, topic: str) -> list[bytes]:
    """Every value on ``topic`` up to its current end, partition by partition, without a consumer
    group (reading moves nobody's offsets). A missing topic reads as empty."""
    parts = await topic_partitions(settings.kafka_bootstrap, topic)
    values: list[bytes] = []
    if not parts:
        return values
    options = client_options(settings)
    async with AIOKafkaConsumer(**options, enable_auto_commit=False, group_id=None) as consumer:
        partitions = [TopicPartition(topic, p) for p in parts]
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            if ends[tp] <= starts[tp]:
                continue
            consumer.seek(tp, starts[tp])
            while await consumer.position(tp) < ends[tp]:
                chunk = await consumer.getmany(tp, timeout_ms=1000)
                values += [m.value for m in chunk.get(tp, []) if m.offset < ends[tp] and m.value]
        await asyncio.sleep(0)  # aiokafka#647: let the coordinator task start before stopping
    return values
