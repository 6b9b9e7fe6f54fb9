"""Fault suite: the broker stops mid-stream (SIGTERM, then separately SIGKILL) and starts again on
the same port and data dir. The worker rides it out without a restart of its own (the same
process throughout), and the final index holds exactly the expected chunk ids: nothing lost,
duplicated or stale, and nothing dead-lettered. Each test has a broker of its own (it is stopped
and restarted; and a new consumer group reads its topics from the start, so another test's
documents there would land in this test's index)."""

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
DOWN_S = 8.0  # how long the broker stays down


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with own_local_broker(tmp_path_factory.mktemp("kafka-broker-faults")) as local:
        yield local


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_the_worker_rides_out_a_broker_restart_mid_stream(
    broker: LocalBroker, tmp_path: Path, how: str
) -> None:
    prefix = f"brk{how}-{uuid.uuid4().hex[:6]}"
    records, latest = stream(prefix, DOCS, UPDATES)
    cfg = Settings(data_dir=tmp_path / "data")
    embedder = open_embedder(cfg)
    try:
        expected = expected_chunk_ids(latest, chunker_for(cfg, embedder))
    finally:
        run_async(embedder.aclose)
    app_id = f"brk-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        bootstrap=broker.bootstrap, data_dir=cfg.data_dir, app_id=app_id, http_port=free_port()
    )
    worker.start()
    try:
        proc = worker.proc
        assert proc is not None
        half = len(records) // 2
        produce(broker.bootstrap, records[:half])
        wait_until(
            lambda: worker.document_ids(str(records[0]["doc_id"])) is not None,
            120,
            "the worker to index the first documents",
        )
        if how == "sigterm":
            assert broker.down()
        else:
            assert broker.kill()
        time.sleep(DOWN_S)  # the outage itself: the worker keeps running against no broker
        assert proc.poll() is None, worker.log_tail()
        broker.up(timeout=180)
        produce(broker.bootstrap, records[half:])

        def exact() -> bool:
            return all(worker.document_ids(d) == ids for d, ids in expected.items())

        wait_until(exact, 240, f"{len(expected)} documents indexed exactly")
        wait_until(lambda: stage_lag(broker.bootstrap, app_id) == 0, 120, "no consumer lag")
        assert proc.poll() is None and worker.proc is proc  # never restarted
        counts = audit(
            f"broker_{how}",
            f"broker_{how}_once_mid_stream_down_{DOWN_S:.0f}s",
            worker,
            broker.bootstrap,
            prefix,
            expected,
        )
        assert counts == {"lost": 0, "duplicated": 0, "stale": 0, "dlq_transient": 0}
        assert worker.stop() == 0
    finally:
        worker.close()
