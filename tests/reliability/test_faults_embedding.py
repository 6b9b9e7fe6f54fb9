"""Fault suite: the embedding API fails 20% of its calls at random (429s, 500s and timeouts, a
seeded generator in the fake OpenAI server) while the real worker indexes a stream of new
documents and updates on a broker of its own. The stream completes, and the final index holds
exactly the expected chunk ids: nothing lost, duplicated or stale, and nothing dead-lettered.

Prints one ``RELIABILITY fault=... lost=0 duplicated=0 stale=0 dlq_transient=0`` line (shown with
``pytest -rP``); the README "Reliability" table is written from it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.stream_support import fake_openai_server, own_broker, stage_lag
from tests.e2e.support import Worker, expected_for, wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.kafka_support import free_port
from tests.reliability.faults_support import EXACT, audit, stream
from tests.secret_scan import register_secret
from tickerwire.core.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

KEY = register_secret("sk-test-faults")
DOCS = 40
UPDATES = 15
FAIL_RATE = 0.2
SEED = 13
CLIENT_TIMEOUT_S = 2.0


def test_random_embedding_api_failures_leave_an_exact_index(tmp_path: Path) -> None:
    prefix = f"flaky-{uuid.uuid4().hex[:6]}"
    records, latest = stream(prefix, DOCS, UPDATES)
    with own_broker(tmp_path / "kafka") as broker, fake_openai_server() as server:
        env = {
            "TICKERWIRE_EMBEDDER": "openai",
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": server.base_url,
            "TICKERWIRE_OPENAI_DIMENSIONS": "64",
            "TICKERWIRE_OPENAI_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
            # small batches: many embedding calls, so the failure rate means something
            "TICKERWIRE_EMBED_BATCH_SIZE": "1",
        }
        cfg = Settings(
            embedder="openai",
            openai_api_key=KEY,
            openai_base_url=server.base_url,
            openai_dimensions=64,
        )
        expected = expected_for(cfg, latest)
        app_id = f"faults-{uuid.uuid4().hex[:6]}"
        worker = Worker(
            bootstrap=broker,
            data_dir=tmp_path / "data",
            app_id=app_id,
            http_port=free_port(),
            env=env,
        )
        worker.start()
        try:
            server.fail_randomly(FAIL_RATE, SEED, timeout_s=2 * CLIENT_TIMEOUT_S)
            produce(broker, records)

            def exact() -> bool:
                return all(worker.document_ids(d) == ids for d, ids in expected.items())

            wait_until(exact, 240, f"{len(expected)} documents indexed exactly")
            wait_until(lambda: stage_lag(broker, app_id) == 0, 120, "no consumer lag")
            calls = len(server.requests)
            injected = (
                f"{sum(server.injected.values())}/{calls}_embedding_calls_failed"
                f"(429={server.injected['429']},500={server.injected['500']},"
                f"timeout={server.injected['timeout']})"
            )
            counts = audit("embedding_api_20pct", injected, worker, broker, prefix, expected)
            assert counts == EXACT
            # every kind of failure happened (at 20% of ~100 calls, all three all but surely do)
            assert set(server.injected) == {"429", "500", "timeout"}, server.injected
            assert worker.metric("tickerwire_dlq_records_total", stage="embed") == 0
            assert worker.stop() == 0
        finally:
            worker.close()
