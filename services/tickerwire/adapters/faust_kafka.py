"""The stages' Kafka plumbing that reaches into faust's and aiokafka's internals.

- :class:`LedgerConsumer`: faust's aiokafka consumer, committing the offsets an
  :class:`OffsetLedger` (the stages' ``Sequencer``) says are processed, instead of faust's own
  acknowledgement lists (see :mod:`tickerwire.stages.sequencing` for why);
- :class:`PromptFetchConsumer`: the same with a shorter broker-side fetch wait;
- :class:`FaustPartitionLog`: the sequencer's ``PartitionLog`` port over the running consumer
  plus a short-lived group-less probe client;
- :class:`FaustSender`: the stages' ``Sender`` port over the faust app's producer.

Every aiokafka error leaving this module is a :class:`~tickerwire.core.errors.TickerwireError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.exceptions import ConsumerNotStarted
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustAIOKafkaConsumer
from faust.types import TP

from tickerwire.adapters.kafka_errors import kafka_errors
from tickerwire.adapters.kafka_options import KafkaConnection, connection_options
from tickerwire.core.errors import BrokerUnavailableError
from tickerwire.core.logging import get_logger

log = get_logger("tickerwire.adapters.faust_kafka")

#: How long the broker may hold a fetch that finds no new data. faust hard-codes 1,500 ms, and
#: aiokafka sends the next fetch to a broker only when the last one has returned, so records
#: produced meanwhile to a partition the pending fetch does not cover (one whose previous records
#: were still being handed to its stream) waited up to 1.5 s, and each stage handing records to
#: the next paid that again (ceiling bench: 7 of its 28 fetches waited 1.5 s and came back
#: empty while embed and index sat idle). Shorter waits mean more empty fetches when idle
#: (measured on an idle worker, CPU of worker + broker: 6% + 7% of a core at 1,500 ms, 9% + 13%
#: at 100 ms, 9% + 15% at 50 ms), which the embedder competes with; 100 ms is the default
#: compromise (``TICKERWIRE_FETCH_MAX_WAIT_MS``).
FETCH_MAX_WAIT_MS = 100


class OffsetLedger(Protocol):
    """Which offsets of which topics may be committed (the stages' ``Sequencer``)."""

    def owns(self, topic: str) -> bool: ...

    def tracked(self) -> list[TP]: ...

    def committable(self, tp: TP) -> int | None: ...

    def assigned(self, tps: Iterable[TP]) -> None: ...


class LedgerConsumer(FaustAIOKafkaConsumer):
    """faust's aiokafka consumer, committing the ledger's offsets for the stage topics."""

    ledger: ClassVar[OffsetLedger | None] = None

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        tps = set(super()._filter_tps_with_pending_acks(topics))
        ledger = self.ledger
        if ledger is not None:
            tps.update(
                tp
                for tp in ledger.tracked()
                if topics is None or tp in topics or tp.topic in topics
            )
        return iter(tps)

    def _new_offset(self, tp: TP) -> int | None:
        ledger = self.ledger
        if ledger is not None and ledger.owns(tp.topic):
            # faust's own acknowledgement lists are not used for these topics.
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            return ledger.committable(tp)
        result: int | None = super()._new_offset(tp)
        return result

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        ledger = self.ledger
        if ledger is not None and ledger.owns(tp.topic):
            return
        await super()._add_gap(tp, offset_from, offset_to)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        ledger = self.ledger
        if ledger is not None:
            ledger.assigned(assigned)
        await super().on_partitions_assigned(assigned, generation_id)


class _PromptFetchConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts and builds its fetcher.
        owner: Any = self.consumer  # the PromptFetchConsumer that made this thread
        consumer._fetch_max_wait_ms = owner.fetch_max_wait_ms
        return consumer


class PromptFetchConsumer(LedgerConsumer):
    """The stages' consumer: :class:`LedgerConsumer` with a short broker-side fetch wait."""

    fetch_max_wait_ms: ClassVar[int] = FETCH_MAX_WAIT_MS

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _PromptFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)


def install_stage_consumer(
    app: faust.App, ledger: OffsetLedger, *, fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
) -> type[PromptFetchConsumer]:
    """Make ``app`` consume with a :class:`PromptFetchConsumer` bound to ``ledger`` (faust
    instantiates the class itself, so the binding is a subclass)."""
    bound = type(
        PromptFetchConsumer.__name__,
        (PromptFetchConsumer,),
        {"ledger": ledger, "fetch_max_wait_ms": fetch_max_wait_ms},
    )
    app.transport.Consumer = bound  # type: ignore[misc]
    return bound


class FaustPartitionLog:
    """The sequencer's ``PartitionLog`` over a running faust app's consumer, plus a short-lived
    group-less client that looks up which offsets hold records.

    Raises :class:`BrokerUnavailableError` when the broker or the consumer is away.
    """

    def __init__(
        self, app: Any, bootstrap: KafkaConnection, *, probe_timeout_ms: int = 5000
    ) -> None:
        self._app = app
        self._bootstrap = bootstrap
        self._probe_timeout_ms = probe_timeout_ms

    @property
    def _thread(self) -> Any:
        return self._app.consumer._thread

    async def committed(self, tp: TP) -> int | None:
        with _consumer_errors():
            thread = self._thread
            result = await thread.call_thread(thread._ensure_consumer().committed, tp)
        return None if result is None else int(result)

    async def log_start(self, tp: TP) -> int:
        with _consumer_errors():
            offsets = await self._app.consumer.earliest_offsets(tp)
        return int(offsets[tp])

    async def position(self, tp: TP) -> int | None:
        with _consumer_errors():
            result = await self._app.consumer.position(tp)
        return None if result is None else int(result)

    async def seek(self, tp: TP, offset: int) -> None:
        with _consumer_errors():
            await self._app.consumer.seek_wait({tp: offset})

    async def first_at_or_after(self, tp: TP, offset: int) -> int | None:
        client = AIOKafkaConsumer(
            **connection_options(self._bootstrap),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="tickerwire-sequence-probe",
        )
        part = TopicPartition(tp.topic, tp.partition)
        await client.start()
        try:
            client.assign([part])
            end = int((await client.end_offsets([part]))[part])
            if offset >= end:
                return end
            client.seek(part, offset)
            data = await client.getmany(part, timeout_ms=self._probe_timeout_ms, max_records=1)
            records = data.get(part, [])
            return int(records[0].offset) if records else None
        except Exception:
            log.exception("sequence_probe_failed", topic=tp.topic, partition=tp.partition)
            return None
        finally:
            await client.stop()


@contextmanager
def _consumer_errors() -> Iterator[None]:
    """aiokafka errors and faust's ConsumerNotStarted (a rebalance or a stop in progress) as
    BrokerUnavailableError."""
    try:
        with kafka_errors():
            yield
    except ConsumerNotStarted as exc:
        raise BrokerUnavailableError(f"the consumer is not running: {exc}") from exc


class OutRecord(Protocol):
    """What :class:`FaustSender` sends (the stages' ``OutMsg``)."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> bytes: ...

    @property
    def value(self) -> bytes: ...

    @property
    def headers(self) -> tuple[tuple[str, bytes], ...]: ...


class FaustSender:
    """The stages' ``Sender``: sends through the faust app's producer and waits for every
    acknowledgement; Kafka's errors come out as tickerwire errors."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def send_all(self, msgs: Sequence[OutRecord]) -> None:
        """Send ``msgs`` (topic, key, value, headers) and return once Kafka has all of them."""
        producer = self._app.producer
        with kafka_errors():
            futures = [
                await producer.send(m.topic, m.key, m.value, None, None, list(m.headers) or None)
                for m in msgs
            ]
            if futures:
                await asyncio.gather(*futures)
