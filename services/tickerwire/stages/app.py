"""faust wiring: one faust App whose agents run the selected stages.

Entry points build a :class:`StageDeps` (the composition root is :mod:`tickerwire.runtime`) and
call :func:`build_app`; everything here is glue between faust events and stage handlers. The
faust and aiokafka internals it needs sit behind :mod:`tickerwire.adapters.faust_kafka`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import structlog
from faust.types import EventT

from tickerwire.adapters.faust_batching import BatchingStream
from tickerwire.adapters.faust_kafka import FaustPartitionLog, FaustSender, install_stage_consumer
from tickerwire.adapters.kafka_options import client_options, faust_credentials
from tickerwire.core.metrics import STAGE_BUFFER
from tickerwire.core.settings import Settings
from tickerwire.core.topics import ALL_STAGES, STAGE_INPUT, StageName
from tickerwire.stages.base import DeadLetters, InMsg, OutMsg, Sender
from tickerwire.stages.retry import DEFAULT_POLICY, RetryPolicy, classify
from tickerwire.stages.sequencing import Sequencer

__all__ = [
    "ALL_STAGES",
    "FaustSender",
    "Handler",
    "StageDeps",
    "StageName",
    "build_app",
    "in_msg",
    "run_batch",
]

log = structlog.get_logger("tickerwire.stages.app")


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
StopWorker = Callable[[str, BaseException], Awaitable[None]]


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
    #: Also run the learning loop's join of feedback to queries (stages/feedback.py).
    join: bool = False


async def stop_worker(stage: str, exc: BaseException) -> None:
    """Start the worker's one clean stop path (SIGTERM: drain, commit, close)."""
    log.critical(
        "fatal_error_stopping_worker",
        stage=stage,
        error_class=type(exc).__name__,
        reason=str(exc),
    )
    os.kill(os.getpid(), signal.SIGTERM)


async def run_batch(
    stage: StageName,
    handler: Handler,
    sender: Sender,
    batch: Sequence[InMsg],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    stop: StopWorker = stop_worker,
) -> bool:
    """Run ``handler`` on ``batch`` until every record is processed or dead-lettered: True.

    The agent lets the batch's offsets be committed only when this returns True. What the
    handler raises decides (:func:`tickerwire.stages.retry.classify`):

    - retriable (429, 5xx, timeouts, Kafka away): the whole batch is retried with backoff for as
      long as the fault lasts, so consumption pauses; nothing is dead-lettered;
    - permanent (the record is bad): the batch is bisected until the bad records are alone, and
      only they are dead-lettered;
    - fatal (a rejected API key, bad settings): ``stop`` stops the worker and this returns False:
      the batch is never committed, so it is consumed again after the restart;
    - any other exception is a bug the record triggers: it is narrowed down like a permanent
      error and the record that raises it alone is dead-lettered (error class = the exception's
      type), so one odd record cannot stop the stream.
    """
    try:
        await policy.call(lambda: handler(batch), stage=stage)
    except Exception as exc:
        outcome = classify(exc)
        log.exception("batch_failed", stage=stage, outcome=outcome, size=len(batch))
        if outcome == "fatal":
            await stop(stage, exc)
            return False
        if len(batch) > 1:
            mid = len(batch) // 2
            for part in (batch[:mid], batch[mid:]):
                if not await run_batch(stage, handler, sender, part, policy=policy, stop=stop):
                    return False
            return True
        dead = [DeadLetters(stage).message(m, exc) for m in batch]
        await _dead_letter(stage, sender, dead, policy)
    return True


async def sequenced_batch(
    stage: StageName,
    topic: str,
    events: Sequence[EventT[Any]],
    sequencer: Sequencer,
    run: Callable[[list[InMsg]], Awaitable[bool]],
) -> None:
    """Hand the events the sequencer admits to ``run`` (run_batch) and mark them processed.

    When ``run`` reports a fatal error the sequencer is halted instead: the batch and everything
    after it stay uncommitted, and are consumed again after the restart.
    """
    tickets = await sequencer.admit([(e.message.tp, e.message.offset) for e in events])
    batch = [in_msg(e) for e, t in zip(events, tickets, strict=True) if t is not None]
    STAGE_BUFFER.labels(stage=stage).set(len(batch))
    try:
        if batch and not await run(batch):
            sequencer.halt()
            return
        sequencer.done(topic, tickets)
    finally:
        STAGE_BUFFER.labels(stage=stage).set(0)


async def _dead_letter(
    stage: StageName, sender: Sender, msgs: list[OutMsg], policy: RetryPolicy
) -> None:
    """Send dead letters until Kafka has them: whatever fails, giving up would lose them."""
    await policy.until_sent(lambda: sender.send_all(msgs), stage=stage, event="dlq_send_failed")


def bytes_table(
    app: faust.App, name: str, settings: Settings, description: str
) -> faust.types.TableT[Any, Any]:
    """A faust Table of bytes keys and values (empty: None), partitioned by key like the topics
    it is filled from."""
    return app.Table(
        name,
        default=None,
        partitions=settings.kafka_partitions,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
        help=description,
    )


def build_app(deps: StageDeps) -> faust.App:
    """The faust app with one agent per selected stage, consuming raw key/value bytes."""
    s = deps.settings
    datadir = s.faust_dir / deps.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        deps.app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        broker_credentials=faust_credentials(s),
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
        table = bytes_table(
            app, "docstate", s, "Per-document state: version, content hash, current chunk ids."
        )
    topics = STAGE_INPUT
    # The agents, not faust, decide which offsets are processed and committed (see
    # stages/sequencing.py for why).
    sequencer = Sequencer(
        FaustPartitionLog(app, client_options(s)), {topics[n]: n for n in deps.stages}
    )
    install_stage_consumer(app, sequencer, fetch_max_wait_ms=s.fetch_max_wait_ms)

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
    if deps.join:
        from tickerwire.stages.feedback import register_join_agent

        register_join_agent(app, s)
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
    name: StageName,
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

        def run(batch: list[InMsg]) -> Awaitable[bool]:
            return run_batch(name, handler, sender, batch)

        batches = stream.noack_batches(size, within)
        async for events in batches:
            await sequenced_batch(name, topic_name, events, sequencer, run)
            # faust's own housekeeping (its shutdown waits for these acks); commits come from
            # the sequencer only.
            for event in events:
                await stream.ack(event)

    agent.__name__ = f"{name}_agent"
    agent.__qualname__ = agent.__name__
    app.agent(topic, name=f"tickerwire.{name}", concurrency=1)(agent)
