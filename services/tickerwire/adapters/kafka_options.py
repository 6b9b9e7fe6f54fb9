"""How every aiokafka client of tickerwire connects: one place builds the connection options
from the settings, so that a new client cannot forget one of them.

Adapters take a :data:`KafkaConnection`: either these options (what the entry points pass, from
``client_options(settings)``) or a bare ``host:port`` (plain text, for tests and tools).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context

from tickerwire.core.settings import Settings

#: Where and how an adapter connects: ``client_options(settings)``, or a plain ``host:port``.
KafkaConnection = str | Mapping[str, Any]


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection keyword arguments for an aiokafka producer, consumer or admin client.

    The password is in the result: never log it (``describe`` names the server only).
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
    }
    if protocol.endswith("SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of SSL and SASL_SSL: the CA file (else the system CAs), an optional
    client certificate, and hostname checking as configured."""
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def connection_options(target: KafkaConnection) -> dict[str, Any]:
    """aiokafka keyword arguments for ``target`` (a copy: callers may add their own)."""
    if isinstance(target, str):
        return {"bootstrap_servers": target}
    return dict(target)


def describe(target: KafkaConnection) -> str:
    """The bootstrap servers of ``target``, for messages: never the credentials."""
    if isinstance(target, str):
        return target
    servers = target.get("bootstrap_servers", "?")
    return servers if isinstance(servers, str) else ",".join(map(str, servers))


def faust_credentials(settings: Settings) -> Any:
    """faust's ``broker_credentials`` for the same options as :func:`client_options` (None for
    PLAINTEXT); faust turns them back into aiokafka's for its consumer, producer and topics."""
    import faust

    options = client_options(settings)
    protocol = options["security_protocol"]
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    if protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=options.get("ssl_context"),
            mechanism=options["sasl_mechanism"],
        )
    return None


def history_reader(target: KafkaConnection) -> AIOKafkaConsumer:
    """A consumer without a group that reads assigned partitions from their beginning (the DLQ
    tools, the entity feed): it commits nothing, so it never moves anyone's offsets."""
    return AIOKafkaConsumer(
        **connection_options(target),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
