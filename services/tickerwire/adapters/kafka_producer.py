"""The producer SDK's Kafka client: an idempotent ``acks=all`` aiokafka producer whose errors
come out as tickerwire errors (:mod:`tickerwire.adapters.kafka_errors`)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from tickerwire.adapters.kafka_errors import check_login, kafka_errors
from tickerwire.core.errors import BrokerUnavailableError

#: Where Kafka stored a record (topic, partition, offset, timestamp).
Delivery: TypeAlias = RecordMetadata


class KafkaRecordProducer:
    """Sends key/value records; every failure is a TickerwireError (TooLargeError, or a
    BrokerError when Kafka is away or refuses)."""

    def __init__(self, **config: Any) -> None:
        self._config = config
        self._producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **config)

    async def start(self) -> None:
        """Connect to the cluster; stops the client again when that fails (BrokerRejectedError
        when the broker refused the login or the TLS handshake)."""
        try:
            with kafka_errors():
                await self._producer.start()
        except BaseException as exc:
            await self._producer.stop()
            if isinstance(exc, BrokerUnavailableError):
                await check_login(self._config)
            raise

    async def stop(self) -> None:
        """Flush what is in flight and disconnect."""
        await self._producer.stop()

    async def enqueue(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Delivery]:
        """Queue one record; the future resolves once Kafka acknowledged it."""
        with kafka_errors():
            sent: asyncio.Future[Any] = await self._producer.send(topic, value=value, key=key)
        return asyncio.ensure_future(self._confirm(sent))

    @staticmethod
    async def _confirm(sent: asyncio.Future[Any]) -> Delivery:
        with kafka_errors():
            delivery: Delivery = await sent
        return delivery

    async def flush(self) -> None:
        """Wait until every record queued so far is acknowledged or failed."""
        with kafka_errors():
            await self._producer.flush()
