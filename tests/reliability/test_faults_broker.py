"""Fault suite: the broker stops mid-stream (SIGTERM, then separately SIGKILL) and starts again on
the same port and data dir. The worker rides it out without a restart of its own (the same
process throughout), and the final index holds exactly the expected chunk ids: nothing lost,
duplicated or stale, and nothing dead-lettered. And with the broker gone, a worker stops within
15 s of SIGTERM (its clean stop waited on the broker for minutes before
TICKERWIRE_SHUTDOWN_TIMEOUT_S bounded it) and commits nothing it has not finished: a restart
finishes the stream into exactly the expected index.

Each test has a broker of its own (it is stopped and restarted; and a new consumer group reads
its topics from the start, so another test's documents there would land in this test's index).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stream_support import own_local_broker
from tests.e2e.support import wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.reliability.faults_support import EXACT, local_case, stream
from tickerwire.localbroker import LocalBroker

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 60
UPDATES = 20
DOWN_S = 8.0  # how long the broker stays down


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with own_local_broker(tmp_path_factory.mktemp("kafka-broker-faults")) as local:
        yield local


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_the_worker_rides_out_a_broker_restart_mid_stream(
    broker: LocalBroker, tmp_path: Path, how: str
) -> None:
    case = local_case(f"brk{how}", broker.bootstrap, tmp_path, DOCS, UPDATES)
    half = len(case.records) // 2
    try:
        case.start(case.records[:half])
        proc = case.worker.proc
        assert proc is not None
        assert broker.down() if how == "sigterm" else broker.kill()
        time.sleep(DOWN_S)  # the outage itself: the worker keeps running against no broker
        assert proc.poll() is None, case.worker.log_tail()
        broker.up(timeout=180)
        produce(broker.bootstrap, case.records[half:])
        case.settle()
        assert proc.poll() is None and case.worker.proc is proc  # never restarted
        counts = case.audit(f"broker_{how}", f"broker_{how}_once_mid_stream_down_{DOWN_S:.0f}s")
        assert counts == EXACT
        assert case.worker.stop() == 0
    finally:
        case.worker.close()


SHUTDOWN_BOUND_S = 15.0


def test_with_the_broker_gone_a_worker_stops_within_15s_and_commits_nothing_unfinished(
    broker: LocalBroker, tmp_path: Path
) -> None:
    case = local_case("brkgone", broker.bootstrap, tmp_path, DOCS, UPDATES)
    worker = case.worker
    try:
        case.start(case.records)
        assert broker.kill()  # mid-stream: batches in flight, their outputs not yet written
        time.sleep(2.0)
        started = time.monotonic()
        code = worker.stop(timeout=120)
        took = time.monotonic() - started
        print(f"shutdown_with_broker_gone seconds={took:.1f} exit={code}")
        assert took <= SHUTDOWN_BOUND_S, f"the worker took {took:.1f}s to stop\n{worker.log_tail()}"

        # Nothing unfinished was committed: a restart against the broker finishes the stream
        # into exactly the expected index.
        broker.up(timeout=180)
        worker.start()
        case.settle()
        injected = f"broker_sigkill_then_worker_sigterm_stopped_in_{took:.0f}s"
        assert case.audit("worker_sigterm_broker_gone", injected) == EXACT
        # The restarted worker also takes new input. When the stream was already done before
        # the kill, settle() returns at once, and a clean stop during the group join may take
        # longer than the shutdown bound (exit 75): wait until it has processed a record.
        late, _ = stream(f"{case.prefix}-late", 1, 0)
        produce(case.bootstrap, late)
        doc_id = str(late[0]["doc_id"])
        wait_until(lambda: worker.document_ids(doc_id) is not None, 120, "a late document")
        assert worker.stop() == 0
    finally:
        worker.close()
