"""Load: a bounded search load on the query API (fixed concurrency, async httpx, loopback) while
ingestion runs, paced, into the same worker. No request may fail; search p50/p99 are printed
(``pytest -rP``), not asserted (timings belong to benchmarks)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.stream_support import own_broker
from tests.e2e.support import Worker, wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.kafka_support import free_port
from tests.reliability.faults_support import stream

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

LOAD_S = 20.0  # CI window
CONCURRENCY = 8
DOCS = 200
PACE_S = 0.1  # one document every 100 ms while the load runs
QUERIES = ["revenue growth", "operating margin", "Firm3 guidance", "cash flow", "risk factors"]


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with own_broker(tmp_path_factory.mktemp("kafka-load")) as bootstrap:
        yield bootstrap


async def search_load(base_url: str, seconds: float) -> tuple[list[float], list[str]]:
    """``CONCURRENCY`` clients searching back to back for ``seconds``: latencies and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
            i = n
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    resp = await http.post("/v1/search", json={"query": QUERIES[i % len(QUERIES)]})
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                else:
                    if resp.status_code != 200:
                        errors.append(f"{resp.status_code} {resp.text[:200]}")
                latencies.append(time.perf_counter() - started)
                i += 1

    await asyncio.gather(*(client(n) for n in range(CONCURRENCY)))
    return latencies, errors


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
            latencies, errors = asyncio.run(search_load(str(worker.client.base_url), LOAD_S))
        finally:
            stop.set()
            feeder.join(60)
        p50, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 99))
        print(
            f"LOAD seconds={LOAD_S:.0f} concurrency={CONCURRENCY} requests={len(latencies)} "
            f"errors={len(errors)} search_p50_ms={p50:.1f} search_p99_ms={p99:.1f}"
        )
        assert errors == [], errors[:5]
        assert latencies
        assert worker.stop() == 0
    finally:
        worker.close()
