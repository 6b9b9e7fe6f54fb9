"""Fault suite: with the broker gone, a worker stops within 15 s of SIGTERM (its clean stop
waited on the broker for minutes before TICKERWIRE_SHUTDOWN_TIMEOUT_S bounded it), and commits
nothing it has not finished: a restart finishes the stream into exactly the expected index."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stream_support import own_local_broker, stage_lag
from tests.e2e.support import Worker, expected_chunk_ids, wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.kafka_support import free_port, run_async
from tests.reliability.faults_support import audit, stream
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.core.settings import Settings
from tickerwire.localbroker import LocalBroker
from tickerwire.runtime import chunker_for

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 60
UPDATES = 20


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with own_local_broker(tmp_path_factory.mktemp("kafka-shutdown")) as local:
        yield local


SHUTDOWN_BOUND_S = 15.0


def test_with_the_broker_gone_a_worker_stops_within_15s_and_commits_nothing_unfinished(
    broker: LocalBroker, tmp_path: Path
) -> None:
    prefix = f"brkgone-{uuid.uuid4().hex[:6]}"
    records, latest = stream(prefix, DOCS, UPDATES)
    cfg = Settings(data_dir=tmp_path / "data")
    embedder = open_embedder(cfg)
    try:
        expected = expected_chunk_ids(latest, chunker_for(cfg, embedder))
    finally:
        run_async(embedder.aclose)
    app_id = f"brkgone-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        bootstrap=broker.bootstrap, data_dir=cfg.data_dir, app_id=app_id, http_port=free_port()
    )
    worker.start()
    try:
        produce(broker.bootstrap, records)
        wait_until(
            lambda: worker.document_ids(str(records[0]["doc_id"])) is not None,
            120,
            "the worker to index the first documents",
        )
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
        wait_until(
            lambda: all(worker.document_ids(d) == ids for d, ids in expected.items()),
            240,
            f"{len(expected)} documents indexed exactly",
        )
        wait_until(lambda: stage_lag(broker.bootstrap, app_id) == 0, 120, "no consumer lag")
        counts = audit(
            "worker_sigterm_broker_gone",
            f"broker_sigkill_then_worker_sigterm_stopped_in_{took:.0f}s",
            worker,
            broker.bootstrap,
            prefix,
            expected,
        )
        assert counts == {"lost": 0, "duplicated": 0, "stale": 0, "dlq_transient": 0}
        assert worker.stop() == 0
    finally:
        worker.close()
