"""The producer SDK: validated raw documents into ``tickerwire.docs.raw``, confirmed by Kafka.

Usage::

    async with DocumentProducer.from_settings(settings) as producer:
        await producer.send(doc)                 # returns once Kafka acknowledged it (acks=all)
        await producer.send_batch(docs)          # many in flight, all acknowledged

The key is ``doc_id`` (so all versions of a document stay in one partition, in order) and the value
is the record's compact JSON. The producer is idempotent, so a retried send never duplicates.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Self, overload

from tickerwire.adapters.kafka_options import (
    KafkaConnection,
    client_options,
    connection_options,
    describe,
)
from tickerwire.adapters.kafka_producer import Delivery, KafkaRecordProducer
from tickerwire.core.closing import AsyncClosing
from tickerwire.core.errors import PermanentError, TickerwireError, TooLargeError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import PRODUCE_REJECTED, PRODUCED
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings
from tickerwire.core.topics import RAW_TOPIC
from tickerwire.produce.readers import check_document

__all__ = ["RAW_TOPIC", "DocumentProducer"]


_log = get_logger(__name__)
_HEADROOM = 64 * 1024


def record_limit(max_body_bytes: int) -> int:
    """The largest Kafka record a document with a body of ``max_body_bytes`` can make: JSON
    escaping can double the body, plus the other fields. The producer's ``max_request_size``,
    and the ``max.message.bytes`` of every topic that carries bodies (schemas/topics.yaml)."""
    return max(1024 * 1024, 2 * max_body_bytes + _HEADROOM)


class DocumentProducer(AsyncClosing):
    """An async context manager that sends raw documents to Kafka.

    ``send`` validates against raw-document/v1 and the body limit first (raising ValidationError or
    TooLargeError, counted in ``tickerwire_producer_rejected_total``), then returns only after the
    broker acknowledged the record with ``acks=all`` (counted in
    ``tickerwire_producer_records_total``).
    ``close`` is idempotent; a producer garbage-collected while open warns with ResourceWarning.
    """

    def __init__(
        self,
        bootstrap_servers: KafkaConnection,
        *,
        topic: str = RAW_TOPIC,
        max_body_bytes: int = Settings.model_fields["max_body_bytes"].default,
        client_id: str = "tickerwire-producer",
        linger_ms: int = 5,
        compression_type: Literal["gzip"] | None = None,
        request_timeout_ms: int = 30_000,
    ) -> None:
        #: The servers only, for messages (the connection options may hold a password).
        self.bootstrap_servers = describe(bootstrap_servers)
        self.topic = topic
        self.max_body_bytes = max_body_bytes
        self._config: dict[str, Any] = {
            **connection_options(bootstrap_servers),
            "client_id": client_id,
            "linger_ms": linger_ms,
            "compression_type": compression_type,
            "request_timeout_ms": request_timeout_ms,
            # JSON escaping can double a body's size; the broker's max.message.bytes still applies.
            "max_request_size": record_limit(max_body_bytes),
        }
        self._producer: KafkaRecordProducer | None = None
        self._closed = False
        self.produced = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, topic: str = RAW_TOPIC) -> DocumentProducer:
        """A producer for the settings' Kafka (security included) with its body size limit."""
        return cls(client_options(settings), topic=topic, max_body_bytes=settings.max_body_bytes)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._producer else "new"
        return f"<DocumentProducer {self.bootstrap_servers} topic={self.topic} {state}>"

    async def start(self) -> None:
        """Connect to the cluster; raises BrokerUnavailableError when it is unreachable."""
        if self._closed:
            raise RuntimeError("DocumentProducer is closed")
        if self._producer is not None:
            return
        producer = KafkaRecordProducer(**self._config)
        await producer.start()
        self._producer = producer
        _log.debug("producer_started", bootstrap=self.bootstrap_servers, topic=self.topic)

    async def _close(self) -> None:
        """Flush what is in flight and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
            _log.debug("producer_closed", topic=self.topic, produced=self.produced)

    async def close(self) -> None:
        """Flush what is in flight and disconnect; safe to call more than once."""
        await self.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_producer", None) is not None and not self._closed:
            _warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)

    # --- sending -------------------------------------------------------------------------------

    def prepare(self, doc: RawDocument | Mapping[str, Any]) -> RawDocument:
        """Validate ``doc`` as it will be sent; raise ValidationError or TooLargeError."""
        obj = doc.to_json_dict() if isinstance(doc, RawDocument) else dict(doc)
        try:
            checked = check_document(obj, max_body_bytes=self.max_body_bytes)
        except PermanentError as exc:
            PRODUCE_REJECTED.labels(error_class=exc.error_class).inc()
            raise
        return doc if isinstance(doc, RawDocument) else checked

    def _require(self) -> KafkaRecordProducer:
        if self._producer is None:
            raise RuntimeError(
                "DocumentProducer is not started; use `async with` or await start()"
                if not self._closed
                else "DocumentProducer is closed"
            )
        return self._producer

    async def _enqueue(self, doc: RawDocument) -> asyncio.Future[Delivery]:
        producer = self._require()
        try:
            future = await producer.enqueue(self.topic, doc.key, doc.to_bytes())
        except TooLargeError as exc:
            PRODUCE_REJECTED.labels(error_class=TooLargeError.__name__).inc()
            raise TooLargeError(f"record for {doc.doc_id} is too large for Kafka: {exc}") from exc
        return future

    async def _confirm(self, doc: RawDocument, future: asyncio.Future[Delivery]) -> Delivery:
        try:
            metadata = await future
        except TooLargeError as exc:
            PRODUCE_REJECTED.labels(error_class=TooLargeError.__name__).inc()
            raise TooLargeError(f"record for {doc.doc_id} is too large for Kafka: {exc}") from exc
        PRODUCED.labels(topic=self.topic).inc()
        self.produced += 1
        return metadata

    async def send(self, doc: RawDocument | Mapping[str, Any]) -> Delivery:
        """Validate and send one document; return its partition/offset once Kafka has it."""
        checked = self.prepare(doc)
        future = await self._enqueue(checked)
        return await self._confirm(checked, future)

    @overload
    async def send_batch(
        self,
        docs: Iterable[RawDocument | Mapping[str, Any]],
        *,
        return_exceptions: Literal[False] = False,
    ) -> list[Delivery]: ...

    @overload
    async def send_batch(
        self,
        docs: Iterable[RawDocument | Mapping[str, Any]],
        *,
        return_exceptions: Literal[True],
    ) -> list[Delivery | Exception]: ...

    async def send_batch(
        self,
        docs: Iterable[RawDocument | Mapping[str, Any]],
        *,
        return_exceptions: bool = False,
    ) -> Sequence[Delivery | Exception]:
        """Send many documents with all of them in flight at once, and await every acknowledgement.

        Results are in input order. By default every document is validated before any is sent and
        the first error is raised; with ``return_exceptions=True`` invalid or failed documents
        appear as their exception in the result and the rest are still sent.
        """
        items = list(docs)
        checked: list[RawDocument | Exception] = []
        for doc in items:
            try:
                checked.append(self.prepare(doc))
            except PermanentError as exc:
                if not return_exceptions:
                    raise
                checked.append(exc)
        pending: list[asyncio.Future[Delivery] | Exception] = []
        for item in checked:
            if isinstance(item, Exception):
                pending.append(item)
                continue
            try:
                pending.append(await self._enqueue(item))
            except TooLargeError as exc:
                if not return_exceptions:
                    raise
                pending.append(exc)
        results: list[Delivery | Exception] = []
        first_error: Exception | None = None
        for item, waiting in zip(checked, pending, strict=True):
            if isinstance(waiting, Exception):
                results.append(waiting)
                continue
            assert isinstance(item, RawDocument)
            try:
                results.append(await self._confirm(item, waiting))
            except TickerwireError as exc:  # await every future before raising
                first_error = first_error or exc
                results.append(exc)
        if first_error is not None and not return_exceptions:
            raise first_error
        return results

    async def flush(self) -> None:
        """Wait until every record sent so far has been acknowledged or failed."""
        await self._require().flush()
