"""Session-wide fixtures: one real local Kafka broker (KRaft) for every test marked ``kafka``.

``kafka_bootstrap`` uses the broker named by ``TICKERWIRE_KAFKA_BOOTSTRAP`` when one answers there;
otherwise it starts a LocalBroker on a free loopback port in a temp dir (jars from the project's
cache ``.tickerwire/kafka/libs``, downloaded once), and stops it by its pid at session end. Either
way every topic of ``schemas/topics.yaml`` exists before the first test runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.kafka_support import create_unique_topics, free_ports, run_async
from tickerwire.adapters.kafka_admin import delete_topics, ensure_topics, load_topic_specs
from tickerwire.localbroker import REPO_ROOT, LocalBroker, probe_broker

#: The project's jar cache, shared by every test broker so the jars download once.
KAFKA_LIBS = REPO_ROOT / ".tickerwire" / "kafka" / "libs"


def _bootstrap_topics(bootstrap: str) -> None:
    run_async(lambda: ensure_topics(bootstrap, load_topic_specs()))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a running broker that has the topics of topics.yaml."""
    external = os.environ.get("TICKERWIRE_KAFKA_BOOTSTRAP")
    if external and run_async(lambda: probe_broker(external, 5.0)) is not None:
        _bootstrap_topics(external)
        yield external
        return
    port, controller_port = free_ports(2)
    broker = LocalBroker(
        port,
        tmp_path_factory.mktemp("kafka-session"),
        KAFKA_LIBS,
        "512m",
        controller_port=controller_port,
    )
    broker.up(timeout=180)
    try:
        _bootstrap_topics(broker.bootstrap)
        yield broker.bootstrap
    finally:
        broker.down()


@pytest.fixture
def kafka_topics(kafka_bootstrap: str) -> Iterator[Callable[..., list[str]]]:
    """A factory of fresh, uniquely named topics, deleted after the test.

    ``kafka_topics(count=1, prefix="test", partitions=1, cleanup_policy="delete", config=None)``
    returns the new names.
    """
    created: list[str] = []

    def make(
        count: int = 1,
        *,
        prefix: str = "test",
        partitions: int = 1,
        cleanup_policy: str = "delete",
        config: dict[str, str] | None = None,
    ) -> list[str]:
        names = run_async(
            lambda: create_unique_topics(
                kafka_bootstrap,
                count,
                prefix=prefix,
                partitions=partitions,
                cleanup_policy=cleanup_policy,
                config=config,
            )
        )
        created.extend(names)
        return names

    yield make
    if created:
        run_async(lambda: delete_topics(kafka_bootstrap, created))
