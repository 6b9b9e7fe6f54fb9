"""aiokafka's errors as tickerwire errors, so the stream loop decides from class attributes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from tickerwire.core.errors import (
    BrokerRejectedError,
    BrokerUnavailableError,
    TickerwireError,
    TooLargeError,
)

_REJECTED = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


def translate(exc: KafkaError) -> TickerwireError:
    """A record too large is permanent, a refused authorisation is fatal; anything else from
    the broker (timeouts, lost connections, leaders moving) is retried."""
    if isinstance(exc, MessageSizeTooLargeError | RecordTooLargeError):
        return TooLargeError(f"record is too large for Kafka: {exc}")
    if isinstance(exc, _REJECTED):
        return BrokerRejectedError(f"Kafka refused the request: {exc}")
    return BrokerUnavailableError(f"Kafka: {type(exc).__name__}: {exc}")


@contextmanager
def kafka_errors() -> Iterator[None]:
    """Raise every aiokafka error in the block as its tickerwire error (see :func:`translate`)."""
    try:
        yield
    except KafkaError as exc:
        raise translate(exc) from exc
