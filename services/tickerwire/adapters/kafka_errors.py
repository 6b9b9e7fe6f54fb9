"""aiokafka's errors as tickerwire errors, so the stream loop decides from class attributes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
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
    if isinstance(exc, MessageSizeTooLargeError):
        return TooLargeError(
            "the broker refused the record as larger than the topic's max.message.bytes "
            f"(raise it in schemas/topics.yaml, then `tickerwire topics create`): {exc}"
        )
    if isinstance(exc, RecordTooLargeError):
        return TooLargeError(f"the record is larger than the producer's max_request_size: {exc}")
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


_LOGIN_REFUSED = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


async def check_login(options: Mapping[str, Any], timeout_s: float = 10.0) -> None:
    """Connect once to the first bootstrap server with ``options`` (aiokafka connection
    options) and log in; raise BrokerRejectedError when the broker refuses the credentials
    or the TLS handshake fails.

    aiokafka reports those only as "Unable to bootstrap", which tickerwire would retry for
    ever; retrying cannot fix a wrong password or CA. A broker that is merely unreachable is
    not an error here (the clients' own retries handle it). Plain-text options skip the check.
    """
    protocol = str(options.get("security_protocol", "PLAINTEXT"))
    if protocol == "PLAINTEXT":
        return
    servers = options["bootstrap_servers"]
    first = (servers if isinstance(servers, str) else servers[0]).split(",")[0].strip()
    host, _, port = first.rpartition(":")
    where = f"Kafka at {first} ({protocol})"
    try:
        async with asyncio.timeout(timeout_s):
            conn = await create_conn(
                host,
                int(port),
                request_timeout_ms=int(timeout_s * 1000),
                security_protocol=protocol,
                ssl_context=options.get("ssl_context"),
                sasl_mechanism=options.get("sasl_mechanism") or "PLAIN",
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
            )
    except _LOGIN_REFUSED as exc:
        user = options.get("sasl_plain_username")
        mechanism = options.get("sasl_mechanism")
        raise BrokerRejectedError(
            f"{where} refused the login of user {user!r} with {mechanism}: {exc} (check "
            "TICKERWIRE_KAFKA_SASL_USERNAME, _PASSWORD and _MECHANISM)"
        ) from exc
    except ssl.SSLError as exc:
        raise BrokerRejectedError(
            f"the TLS handshake with {where} failed: {exc} (check TICKERWIRE_KAFKA_SSL_CAFILE "
            "and TICKERWIRE_KAFKA_SSL_CHECK_HOSTNAME)"
        ) from exc
    except (KafkaError, OSError, TimeoutError):
        return
    conn.close()
