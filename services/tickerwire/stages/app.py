"""faust wiring: one faust App whose agents run the selected stages.

Entry points build a :class:`StageDeps` (the composition root in :mod:`tickerwire.bootstrap`) and
call :func:`build_app`; everything here is glue between faust events and stage handlers.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import faust
import structlog
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT

from tickerwire.core.errors import TickerwireError
from tickerwire.core.metrics import STAGE_BUFFER
from tickerwire.core.settings import Settings
from tickerwire.stages.base import (
    CHUNKS_TOPIC,
    RAW_TOPIC,
    VECTORS_TOPIC,
    DeadLetters,
    InMsg,
    OutMsg,
)
from tickerwire.stages.batching import BatchingStream
from tickerwire.stages.sequencing import (
    FaustPartitionLog,
    LedgerConsumer,
    Sequencer,
    ledger_consumer,
)

log = structlog.get_logger("tickerwire.stages.app")

StageName = Literal["preprocess", "embed", "index"]
ALL_STAGES: tuple[StageName, ...] = ("preprocess", "embed", "index")

#: How often a failing batch is retried before its records are dead-lettered one by one.
BATCH_ATTEMPTS = 5


class FaustSender:
    """Sends through the faust app's producer and waits for every acknowledgement."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def send_all(self, msgs: Sequence[OutMsg]) -> None:
        producer = self._app.producer
        futures = [
            await producer.send(m.topic, m.key, m.value, None, None, list(m.headers) or None)
            for m in msgs
        ]
        if futures:
            await asyncio.gather(*futures)


def in_msg(event: EventT[Any]) -> InMsg:
    """The stage-facing view of a faust event (raw key and value bytes)."""
    m = event.message
    raw_headers: Any = m.headers or []
    pairs: list[tuple[Any, Any]] = list(
        raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    )
    headers = tuple((str(k), v.encode() if isinstance(v, str) else v) for k, v in pairs)
    return InMsg(
        topic=m.topic,
        partition=m.partition,
        offset=m.offset,
        key=m.key,
        value=m.value if isinstance(m.value, bytes) else bytes(m.value or b""),
        headers=headers,
        timestamp_ms=int(m.timestamp * 1000) if m.timestamp else None,
    )


Handler = Callable[[Sequence[InMsg]], Awaitable[None]]

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


@dataclass
class StageDeps:
    """What the stage factories need; built once by the composition root."""

    settings: Settings
    stages: tuple[StageName, ...]
    #: Called with the app once it exists; returns the handler for each selected stage.
    make_handlers: Callable[
        [faust.App, faust.types.TableT[Any, Any] | None], dict[StageName, Handler]
    ]
    app_id: str = "tickerwire"
    extra_services: list[Any] = field(default_factory=list)


async def run_batch(stage: str, handler: Handler, sender: FaustSender, batch: list[InMsg]) -> None:
    """Run a handler until it succeeds; after repeated failure dead-letter the batch's records.

    The agent acks the batch once this returns, so it returns only when the batch is processed
    or safely in the DLQ. A fatal error (bad settings, a rejected API key) stops the worker
    instead, with the batch unacknowledged.
    """
    dead = DeadLetters(stage)  # type: ignore[arg-type]
    delay = 0.5
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            await handler(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            retriable = isinstance(exc, TickerwireError) and exc.retriable
            log.exception(
                "batch_failed", stage=stage, attempt=attempt, retriable=retriable, size=len(batch)
            )
            if attempt == BATCH_ATTEMPTS:
                if len(batch) > 1:
                    # Narrow the failure down: records that work alone still go through.
                    for one in batch:
                        await run_batch(stage, handler, sender, [one])
                    return
                await _dead_letter_forever(sender, [dead.message(m, exc, attempt) for m in batch])
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        else:
            return


def is_fatal(exc: BaseException) -> bool:
    """Errors no retry or dead letter can fix: bad settings, a rejected API key."""
    return isinstance(exc, TickerwireError) and not exc.retriable and not exc.dead_letter


async def _stop_worker(stage: str, exc: BaseException) -> None:
    """Stop the whole worker cleanly, leaving the batch unacknowledged; never returns."""
    log.critical(
        "fatal_error_stopping_worker",
        stage=stage,
        error_class=type(exc).__name__,
        reason=str(exc),
    )
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.Event().wait()  # the shutdown cancels this task; the batch is not acked


async def _dead_letter_forever(sender: FaustSender, msgs: list[OutMsg]) -> None:
    delay = 0.5
    while True:
        try:
            await sender.send_all(msgs)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dlq_send_failed", records=len(msgs))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        else:
            return


def build_app(deps: StageDeps) -> faust.App:
    """The faust app with one agent per selected stage, consuming raw key/value bytes."""
    s = deps.settings
    datadir = s.faust_dir / deps.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        deps.app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=s.kafka_partitions,
        topic_replication_factor=s.kafka_replication,
        topic_allow_declare=True,
        web_enabled=False,
        autodiscover=False,
        broker_session_timeout=15.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        broker_request_timeout=40.0,
        stream_buffer_maxsize=max(4096, s.embed_batch_size * 8),
        producer_acks=-1,
        producer_linger_ms=1,
        producer_max_request_size=8 * 1024 * 1024,
        # aiokafka keeps one request in flight per broker and drains one batch per partition
        # into it: at the 16 KiB default, a request carried two vector records per partition.
        # Kept under the broker's default message.max.bytes (~1 MiB) for a whole batch.
        producer_max_batch_size=512 * 1024,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=3600.0,
        Stream=BatchingStream,
    )
    table = None
    if "preprocess" in deps.stages:
        table = app.Table(
            "docstate",
            default=None,
            partitions=s.kafka_partitions,
            key_type=bytes,
            value_type=bytes,
            use_partitioner=True,
            help="Per-document state: version, content hash, current chunk ids.",
        )
    topics = {"preprocess": RAW_TOPIC, "embed": CHUNKS_TOPIC, "index": VECTORS_TOPIC}
    # The agents, not faust, decide which offsets are processed and committed (see
    # stages/sequencing.py for why).
    sequencer = Sequencer(
        FaustPartitionLog(app, s.kafka_bootstrap), {topics[n]: n for n in deps.stages}
    )
    app.transport.Consumer = ledger_consumer(  # type: ignore[misc]
        sequencer, PromptFetchConsumer, fetch_max_wait_ms=s.fetch_max_wait_ms
    )

    async def watch_sequences() -> None:
        await sequencer.watch()

    app.timer(2.0, name="tickerwire.sequence_watch")(watch_sequences)
    handlers = deps.make_handlers(app, table)
    sender = FaustSender(app)
    windows = {
        "preprocess": (256, 0.005),
        "embed": (s.embed_batch_size, s.embed_batch_window_ms / 1000),
        "index": (s.index_batch_size, 0.01),
    }
    for name in deps.stages:
        handler = handlers[name]
        topic = app.topic(
            topics[name],
            key_serializer="raw",
            value_serializer="raw",
            partitions=s.kafka_partitions,
        )
        size, within = windows[name]
        _register_agent(app, name, topic, handler, sender, sequencer, size, within)
    return app


def _register_agent(
    app: faust.App,
    name: str,
    topic: faust.TopicT,
    handler: Handler,
    sender: FaustSender,
    sequencer: Sequencer,
    size: int,
    within: float,
) -> None:
    topic_name = topic.get_topic_name()

    async def agent(stream: faust.StreamT[bytes]) -> None:
        # noack_batches hands over a batch without acking it. The sequencer admits each
        # partition's records in offset order only, and their offsets become committable only
        # after the batch is processed (or dead-lettered). A batch interrupted by shutdown or a
        # crash is never committed, so it is consumed again after the restart.
        if not isinstance(stream, BatchingStream):
            raise TypeError(f"the {name} agent needs a BatchingStream, got {type(stream)}")
        batches = stream.noack_batches(size, within)
        async for events in batches:
            tickets = await sequencer.admit([(e.message.tp, e.message.offset) for e in events])
            batch = [in_msg(e) for e, t in zip(events, tickets, strict=True) if t is not None]
            STAGE_BUFFER.labels(stage=name).set(len(batch))
            if batch:
                await run_batch(name, handler, sender, batch)
            sequencer.done(topic_name, tickets)
            for event in events:  # faust's own housekeeping; commits come from the sequencer
                await stream.ack(event)
            STAGE_BUFFER.labels(stage=name).set(0)

    agent.__name__ = f"{name}_agent"
    agent.__qualname__ = agent.__name__
    app.agent(topic, name=f"tickerwire.{name}", concurrency=1)(agent)
