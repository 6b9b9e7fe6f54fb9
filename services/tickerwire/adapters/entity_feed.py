"""Feeds the query service's entity registry from the compacted ``tickerwire.entities`` topic.

The feed reads the whole topic from the beginning without a consumer group (so every query
replica builds the full registry and no offsets are ever committed), then follows it: a company
first seen in a document streamed a second ago is understood in the next question.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog
from aiokafka import TopicPartition

from tickerwire.adapters.kafka_admin import topic_partitions
from tickerwire.adapters.kafka_options import KafkaConnection, history_reader
from tickerwire.core.errors import PermanentError
from tickerwire.core.metrics import ENTITIES_KNOWN
from tickerwire.core.records import EntityRecord
from tickerwire.pipeline.entities import ENTITIES_TOPIC, EntityObservation
from tickerwire.query.understanding import EntityRegistry

log = structlog.get_logger("tickerwire.adapters.entity_feed")

#: How often the feed looks for partitions when the topic does not exist yet.
_RETRY_S = 2.0


@dataclass(eq=False)
class EntityFeed:
    """Follows the entities topic into ``registry``; an async context manager.

    ``caught_up`` is set once everything that was on the topic when the feed started has been
    folded in (immediately for an empty or missing topic).
    """

    bootstrap: KafkaConnection = field(repr=False)  # may hold a password
    registry: EntityRegistry = field(repr=False)
    topic: str = field(default=ENTITIES_TOPIC, kw_only=True)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    records: int = field(default=0, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def __aenter__(self) -> EntityFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start following in the background; idempotent."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="entity-feed")

    async def aclose(self) -> None:
        """Stop following; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def fold(self, value: bytes | None) -> None:
        """Fold one record into the registry; a record that is not entity/v1 is skipped."""
        try:
            rec = EntityRecord.from_bytes(value or b"")
        except PermanentError as exc:
            log.warning("entity_record_unreadable", reason=exc.reason)
            return
        self.registry.observe(EntityObservation(ticker=rec.ticker, name=rec.name))
        self.records += 1
        ENTITIES_KNOWN.set(len(self.registry))

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker outage must not take the query service down
                log.exception("entity_feed_failed")
                await asyncio.sleep(_RETRY_S)

    async def _follow(self) -> None:
        parts = await topic_partitions(self.bootstrap, self.topic)
        while not parts:
            self.caught_up.set()  # nothing to read yet: questions go on with what is known
            await asyncio.sleep(_RETRY_S)
            parts = await topic_partitions(self.bootstrap, self.topic)
        consumer = history_reader(self.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in parts]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if end[tp] > 0}
            if not pending:
                self.caught_up.set()
            while True:
                batch = await consumer.getmany(*tps, timeout_ms=1000)
                for msgs in batch.values():
                    for m in msgs:
                        self.fold(m.value)
                for tp in list(pending):
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
                if not pending and not self.caught_up.is_set():
                    log.info("entity_feed_caught_up", records=self.records)
                    self.caught_up.set()
        finally:
            # aiokafka#647: stopping before the coordinator's first task ran raises
            # CancelledError; one turn of the loop lets it start.
            await asyncio.sleep(0)
            await consumer.stop()
