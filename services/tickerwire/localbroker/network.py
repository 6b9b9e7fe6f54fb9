"""Loopback ports and broker probes: where a local broker can listen, and whether one answers.

:func:`run_sync` is the one way sync tooling (and the tests) run a probe or admin coroutine.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tickerwire.adapters.kafka_options import KafkaConnection, connection_options
from tickerwire.core.errors import BrokerError, ConfigError

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
_T = TypeVar("_T")


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Split the first ``host:port`` of a bootstrap string; raise ConfigError when malformed."""
    first = bootstrap.split(",")[0].strip()
    host, sep, port_text = first.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"kafka bootstrap {bootstrap!r} is not host:port")
    return host, int(port_text)


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` (SO_REUSEADDR, as the JVM binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_loopback_ports(count: int, low: int = 20000, high: int = 32000) -> list[int]:
    """``count`` distinct loopback ports nothing listens on, sorted.

    They are drawn below Linux's ephemeral range (32768–60999), so an outgoing connection cannot
    take one as its source port between choosing it and binding it (``bind(0)`` would).
    """
    rng = random.SystemRandom()
    ports: set[int] = set()
    for _ in range(20 * count + 1000):
        if len(ports) == count:
            break
        port = rng.randrange(low, high)
        if port not in ports and is_port_free(port):
            ports.add(port)
    if len(ports) < count:
        raise BrokerError(f"no {count} free loopback ports in {low}-{high}")
    return sorted(ports)


def is_listening(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def probe_broker(bootstrap: KafkaConnection, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """The cluster metadata when a broker answers at ``bootstrap`` (a ``host:port``, or aiokafka
    connection options) with a controller, else None."""
    admin = AIOKafkaAdminClient(
        **connection_options(bootstrap),
        request_timeout_ms=max(int(timeout_s * 1000), 500),
        retry_backoff_ms=100,
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            cluster: dict[str, Any] = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        await admin.close()
    brokers = cluster.get("brokers") or []
    controller = cluster.get("controller_id")
    if not brokers or controller is None or controller < 0:
        return None
    return cluster


def run_sync(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from sync code, on a private loop in a worker thread.

    The thread keeps this safe inside a running loop, and leaves the caller's current event loop
    untouched (``asyncio.run`` in this thread would reset it to None).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-sync") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
