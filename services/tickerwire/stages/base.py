"""What every stage shares: the message shapes, durable sending, dead letters and retries.

Stage handlers work on :class:`InMsg` batches and hand :class:`OutMsg` lists to a :class:`Sender`,
so they can be tested without faust; the faust glue lives in :mod:`tickerwire.stages.app`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

from tickerwire.core.errors import TickerwireError
from tickerwire.core.metrics import DLQ_RECORDS, STAGE_RECORDS, STAGE_RETRIES
from tickerwire.core.records import DlqOriginal, DlqRecord, Stage

RAW_TOPIC = "tickerwire.docs.raw"
CHUNKS_TOPIC = "tickerwire.docs.chunks"
VECTORS_TOPIC = "tickerwire.docs.vectors"
DLQ_TOPIC = "tickerwire.docs.dlq"

T = TypeVar("T")
log = structlog.get_logger("tickerwire.stages")


@dataclass(frozen=True, slots=True)
class InMsg:
    """One consumed Kafka record, with everything a dead letter needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None

    @property
    def doc_id(self) -> str | None:
        """The record key as text (every tickerwire topic is keyed by doc_id)."""
        if self.key is None:
            return None
        return self.key.decode("utf-8", errors="replace")

    def original(self) -> DlqOriginal:
        """The DLQ description of this record, with its exact bytes."""
        return DlqOriginal.from_message(
            topic=self.topic,
            value=self.value,
            key=self.key,
            partition=self.partition,
            offset=self.offset,
            timestamp_ms=self.timestamp_ms,
            headers=list(self.headers),
        )

    def log_context(self) -> dict[str, Any]:
        """Context to bind on every log line about this record."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "doc_id": self.doc_id,
        }


@dataclass(frozen=True, slots=True)
class OutMsg:
    """One record to produce."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Sender(Protocol):
    """Produces records; returns only once every record is acknowledged by Kafka."""

    async def send_all(self, msgs: Sequence[OutMsg]) -> None: ...


@dataclass
class DeadLetters:
    """Builds dead-letter records for a stage and counts them."""

    stage: Stage
    topic: str = DLQ_TOPIC

    def message(self, msg: InMsg, error: BaseException, attempts: int = 1) -> OutMsg:
        """The DLQ record for ``msg`` failing with ``error``; logs and counts it."""
        record = DlqRecord.for_error(
            stage=self.stage,
            error=error,
            original=msg.original(),
            doc_id=msg.doc_id,
            attempts=attempts,
        )
        DLQ_RECORDS.labels(stage=self.stage, error_class=record.error_class).inc()
        STAGE_RECORDS.labels(stage=self.stage, outcome="dlq").inc()
        log.warning(
            "dead_lettered",
            stage=self.stage,
            error_class=record.error_class,
            reason=record.reason,
            **msg.log_context(),
        )
        return OutMsg(topic=self.topic, key=msg.key or b"", value=record.to_bytes())


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter for transient errors; forever unless bounded.

    A stage retrying holds its batch, so its consumer stops reading: that is the back-pressure.
    ``retry_after`` from the error (e.g. HTTP Retry-After) is honoured when it is longer.
    """

    initial: float = 0.2
    maximum: float = 30.0
    max_attempts: int | None = None
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    async def run(self, stage: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Call ``fn`` until it succeeds or raises an error that is not retriable."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn()
            except TickerwireError as exc:
                if not exc.retriable or (
                    self.max_attempts is not None and attempt >= self.max_attempts
                ):
                    raise
                backoff = random.uniform(0, min(self.maximum, self.initial * 2 ** (attempt - 1)))
                delay = max(backoff, exc.retry_after or 0.0)
                STAGE_RETRIES.labels(stage=stage, error_class=exc.error_class).inc()
                log.warning(
                    "transient_error_retrying",
                    stage=stage,
                    error_class=exc.error_class,
                    reason=exc.reason,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                )
                await self.sleep(delay)
