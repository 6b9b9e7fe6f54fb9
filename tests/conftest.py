"""Session-wide fixtures: one real local Kafka broker (KRaft) for every test marked ``kafka``.

``kafka_bootstrap`` uses the broker named by ``TICKERWIRE_KAFKA_BOOTSTRAP`` when one answers there;
otherwise it starts a LocalBroker on a free loopback port in a temp dir (jars from the project's
cache ``.tickerwire/kafka/libs``, downloaded once), and stops it by its pid at session end. Either
way every topic of ``schemas/topics.yaml`` exists before the first test runs.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from tests import secret_scan
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

    def make(count: int = 1, **options: Any) -> list[str]:
        names = run_async(lambda: create_unique_topics(kafka_bootstrap, count, **options))
        created.extend(names)
        return names

    yield make
    if created:
        run_async(lambda: delete_topics(kafka_bootstrap, created))


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of the test module's own, with every topic: no other test's records in it."""
    from tests.e2e.stream_support import own_broker

    with own_broker(tmp_path_factory.mktemp("kafka-module")) as bootstrap:
        yield bootstrap


# Secret scanning (issue 13, "Security"): the secrets tests register (tests/secret_scan.py) must
# never appear in what a test printed or logged, nor in the logs of the processes it started.


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage when each test ends, so that a socket, transport or task a test leaks is
    reported (warnings are errors) in the teardown of the test that leaked it, not in whichever
    later test the collector happens to run during."""
    yield
    gc.collect()


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_process_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session, fail if a secret is in a log file under the temp folder."""
    secret_scan.register_environment()
    yield
    found = secret_scan.leaked_in_files(tmp_path_factory.getbasetemp())
    if found:
        lines = [f"{path}: {', '.join(hits)}" for path, hits in sorted(found.items())]
        pytest.fail("secrets appear in process logs:\n" + "\n".join(lines), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Fail a test whose captured stdout, stderr or log records hold a registered secret."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    hits = secret_scan.leaked(content for _, content in report.sections)
    if hits:
        report.outcome = "failed"
        report.longrepr = (
            f"secrets appear in the captured output of {item.nodeid} ({report.when}): "
            + ", ".join(hits)
        )
