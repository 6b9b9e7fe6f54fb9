"""A faust consumer that commits nothing once the worker has been told to stop.

When a faust worker stops, it suspends flow control and then *skips* the events it has already
fetched, acknowledging them without handing them to any agent; its final commit then covers them.
For an agent that holds a batch (ours do, to embed and write in bulk), that commit can also pass
events of the interrupted batch. Measured here before this guard: SIGTERM in the middle of a
600-document stream lost the chunks of 9–10 documents (kill -9 lost nothing).

So after SIGTERM/SIGINT the consumer makes no further commits: offsets stay where the last
periodic commit left them (every ``broker_commit_interval``, and only over events whose output was
already durable), and the restart replays the rest, which every stage handles idempotently.
"""

from __future__ import annotations

from collections.abc import Mapping

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from tickerwire.core.logging import get_logger

log = get_logger("tickerwire.stages.consumer")


class StopLatch:
    """Set once, when the worker starts stopping."""

    def __init__(self) -> None:
        self.stopping = False


STOPPING = StopLatch()


class GuardedConsumer(AIOKafkaConsumer):
    """faust's aiokafka consumer, frozen (no commits) once the worker is stopping."""

    async def commit(self, topics: object = None, start_new_transaction: bool = True) -> bool:
        """Commit as faust does, except after a stop signal (then: replay on restart)."""
        if STOPPING.stopping:
            log.info("commit_skipped_while_stopping")
            return False
        result: bool = await super().commit(topics, start_new_transaction)  # type: ignore[arg-type]
        return result

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        if STOPPING.stopping:
            return False
        result: bool = await super()._commit(offsets)
        return result
