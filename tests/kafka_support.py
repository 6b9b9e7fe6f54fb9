"""Helpers for tests that use a real Kafka broker (no fixtures here; see conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from tickerwire.adapters.kafka_admin import TopicSpec, ensure_topics, load_topic_specs
from tickerwire.localbroker import REPO_ROOT, LocalBroker, SaslSslListener, free_loopback_ports
from tickerwire.localbroker import run_sync as run_async

__all__ = [
    "create_unique_topics",
    "free_port",
    "free_ports",
    "private_broker",
    "run_async",
    "unique_topic",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (outside the ephemeral range)."""
    return free_loopback_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports."""
    return free_loopback_ports(count)


def unique_topic(prefix: str = "test") -> str:
    """A topic name no other test uses: ``<prefix>.<12 hex chars>``."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


async def create_unique_topics(
    bootstrap: str,
    count: int = 1,
    *,
    prefix: str = "test",
    partitions: int = 1,
    cleanup_policy: str = "delete",
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create ``count`` fresh topics and return their names."""
    specs = [
        TopicSpec(
            name=unique_topic(prefix),
            partitions=partitions,
            replication=1,
            cleanup_policy=cleanup_policy,
            config=config or {},
        )
        for _ in range(count)
    ]
    result = await ensure_topics(bootstrap, specs)
    return result.created


@contextlib.contextmanager
def private_broker(
    workdir: Path, *, partitions: int = 3, sasl_ssl: SaslSslListener | None = None
) -> Iterator[str]:
    """A broker of the caller's own (no other test's records) with the topics of topics.yaml,
    created with ``partitions`` partitions; yields its bootstrap and stops it by its pid.

    With ``sasl_ssl`` its client listener takes SASL over TLS only (see SaslSslListener)."""
    port, cport = free_ports(2)
    broker = LocalBroker(
        port,
        workdir,
        REPO_ROOT / ".tickerwire" / "kafka" / "libs",
        "512m",
        controller_port=cport,
        partitions=partitions,
        sasl_ssl=sasl_ssl,
    )
    broker.up(timeout=180)
    try:
        options = broker.client_options()
        run_async(lambda: ensure_topics(options, load_topic_specs(), partitions=partitions))
        yield broker.bootstrap
    finally:
        broker.down()
