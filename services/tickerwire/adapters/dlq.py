"""Reading the dead-letter topic and replaying its records to where they came from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, TopicPartition

from tickerwire.adapters.kafka_admin import topic_partitions
from tickerwire.adapters.kafka_options import KafkaConnection, connection_options, history_reader
from tickerwire.core.errors import PermanentError
from tickerwire.core.metrics import DLQ_REPLAYED
from tickerwire.core.records import DlqRecord
from tickerwire.core.topics import DLQ_TOPIC

REPLAY_HEADER = "tickerwire-replayed-from"


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """One dead-letter record and where it sits in the DLQ topic."""

    partition: int
    offset: int
    record: DlqRecord


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which dead letters to select; empty fields match everything."""

    stage: str | None = None
    error_class: str | None = None
    doc_id: str | None = None
    topic: str | None = None

    def matches(self, rec: DlqRecord) -> bool:
        return (
            (self.stage is None or rec.stage == self.stage)
            and (self.error_class is None or rec.error_class == self.error_class)
            and (self.doc_id is None or rec.doc_id == self.doc_id)
            and (self.topic is None or rec.original.topic == self.topic)
        )


async def read_dlq(
    bootstrap: KafkaConnection,
    flt: DlqFilter | None = None,
    *,
    topic: str = DLQ_TOPIC,
    on_unreadable: Callable[[int, int, str], None] | None = None,
) -> list[DlqEntry]:
    """Every DLQ record up to the current end of the topic that matches ``flt``.

    Reads without a consumer group, so listing never moves anyone's offsets.
    """
    flt = flt or DlqFilter()
    parts = await topic_partitions(bootstrap, topic)
    if not parts:
        return []
    consumer = history_reader(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        out: list[DlqEntry] = []
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset >= end[tp]:
                        continue
                    try:
                        rec = DlqRecord.from_bytes(m.value or b"")
                    except PermanentError as exc:
                        if on_unreadable:
                            on_unreadable(tp.partition, m.offset, exc.reason)
                        continue
                    if flt.matches(rec):
                        out.append(DlqEntry(tp.partition, m.offset, rec))
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return out
    finally:
        # aiokafka#647: stopping before the coordinator's first task ran raises CancelledError;
        # one turn of the loop lets it start.
        await asyncio.sleep(0)
        await consumer.stop()


async def replay(bootstrap: KafkaConnection, entries: list[DlqEntry]) -> int:
    """Re-produce each entry's original key, value and headers to its original topic."""
    producer = AIOKafkaProducer(
        **connection_options(bootstrap), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        futures = []
        for e in entries:
            orig = e.record.original
            headers = [(k, v or b"") for k, v in orig.header_list() if k != REPLAY_HEADER]
            headers.append((REPLAY_HEADER, f"{DLQ_TOPIC}:{e.partition}:{e.offset}".encode()))
            futures.append(
                await producer.send(
                    orig.topic, value=orig.value_bytes(), key=orig.key_bytes(), headers=headers
                )
            )
            DLQ_REPLAYED.labels(topic=orig.topic).inc()
        for f in futures:
            await f
        return len(futures)
    finally:
        await producer.stop()
