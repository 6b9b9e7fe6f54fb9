"""Load: a bounded search load on the query API (fixed concurrency, async httpx, loopback) while
ingestion runs, paced, into the same worker. No request may fail; search p50/p99 are printed
(``pytest -rP``), not asserted (timings belong to benchmarks)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.support import Worker, wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.kafka_support import free_port
from tests.reliability.faults_support import stream
from tickerwire.evaluation.load import search_load

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

LOAD_S = 20.0  # CI window
CONCURRENCY = 8
DOCS = 200
PACE_S = 0.1  # one document every 100 ms while the load runs


@pytest.fixture
def broker(module_broker: str) -> str:
    return module_broker


def test_search_under_load_while_ingesting_has_no_errors(broker: str, tmp_path: Path) -> None:
    prefix = f"load-{uuid.uuid4().hex[:6]}"
    records, _ = stream(prefix, DOCS, 0)
    worker = Worker(
        bootstrap=broker, data_dir=tmp_path / "data", app_id=prefix, http_port=free_port()
    )
    worker.start()
    try:
        produce(broker, records[:20])  # something to find before the load starts
        wait_until(lambda: worker.document_ids(str(records[0]["doc_id"])) is not None, 120, "a doc")
        stop = threading.Event()

        def ingest() -> None:
            for record in records[20:]:
                if stop.is_set():
                    return
                produce(broker, [record])
                time.sleep(PACE_S)

        feeder = threading.Thread(target=ingest, daemon=True)
        feeder.start()
        try:
            result = asyncio.run(
                search_load(str(worker.client.base_url), LOAD_S, concurrency=CONCURRENCY)
            )
        finally:
            stop.set()
            feeder.join(60)
        print(result.line())
        assert result.errors == [], result.errors[:5]
        assert result.latencies
        assert worker.stop() == 0
    finally:
        worker.close()
