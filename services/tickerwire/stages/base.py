"""What every stage shares: the message shapes, durable sending and dead letters.

Stage handlers work on :class:`InMsg` batches and hand :class:`OutMsg` lists to a :class:`Sender`,
so they can be tested without faust; the faust glue lives in :mod:`tickerwire.stages.app`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

import structlog

from tickerwire.core.metrics import DLQ_RECORDS, STAGE_RECORDS
from tickerwire.core.records import DlqOriginal, DlqRecord
from tickerwire.core.topics import CHUNKS_TOPIC, DLQ_TOPIC, RAW_TOPIC, VECTORS_TOPIC, Stage

__all__ = [
    "CHUNKS_TOPIC",
    "DLQ_TOPIC",
    "RAW_TOPIC",
    "VECTORS_TOPIC",
    "CollectingSender",
    "DeadLetters",
    "InMsg",
    "OutMsg",
    "Sender",
]

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
        return DlqOriginal.from_message(**{f.name: getattr(self, f.name) for f in fields(self)})

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


class CollectingSender:
    """A Sender that keeps what it is asked to send, in order: for stages chained in memory
    (``tickerwire reindex``) and for tests."""

    def __init__(self) -> None:
        self.sent: list[OutMsg] = []

    async def send_all(self, msgs: Sequence[OutMsg]) -> None:
        self.sent.extend(msgs)

    def take(self) -> list[OutMsg]:
        """What was sent since the last take, forgotten here."""
        out, self.sent = self.sent, []
        return out


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
