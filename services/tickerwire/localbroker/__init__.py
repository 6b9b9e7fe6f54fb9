"""The local Apache Kafka broker of ``tickerwire kafka up|down|status``, eval, tests and benches.

Tooling, not an adapter of the running system: one KRaft node (broker and controller) on
127.0.0.1. Rooms: :mod:`.network` (ports, probes, :func:`run_sync`), :mod:`.jars` (the Maven
fetch and jar cache), :mod:`.config` (folders, ``server.properties``, the JVM command),
:mod:`.files` (locks and /proc), :mod:`.broker` (start, find by verified pid, stop).
"""

from __future__ import annotations

from tickerwire.localbroker.broker import BrokerStatus, LocalBroker, UpResult
from tickerwire.localbroker.config import DEPLOY_DIR, REPO_ROOT, BrokerConfig, SaslSslListener
from tickerwire.localbroker.network import (
    free_loopback_ports,
    is_port_free,
    parse_bootstrap,
    probe_broker,
    run_sync,
)

__all__ = [
    "DEPLOY_DIR",
    "REPO_ROOT",
    "BrokerConfig",
    "BrokerStatus",
    "LocalBroker",
    "SaslSslListener",
    "UpResult",
    "free_loopback_ports",
    "is_port_free",
    "parse_bootstrap",
    "probe_broker",
    "run_sync",
]
