"""Helpers for tests that use a real Kafka broker (no fixtures here; see conftest.py)."""

from __future__ import annotations

import uuid

from tickerwire.adapters.kafka_admin import TopicSpec, ensure_topics
from tickerwire.localbroker import free_loopback_ports
from tickerwire.localbroker import run_sync as run_async

__all__ = ["create_unique_topics", "free_port", "free_ports", "run_async", "unique_topic"]


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
