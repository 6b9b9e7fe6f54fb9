"""The real worker on the OpenAI embedder (a fake OpenAI-compatible server over HTTP) and a real
broker: a rejected API key stops the worker with nothing dead-lettered, and a restart with a good
key indexes every document; a two-minute embedding outage dead-letters nothing, and the stream
completes once it clears."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.stream_support import dead_letters, fake_openai_server
from tests.e2e.support import Worker, wait_until
from tests.e2e.test_pipeline_e2e import make_doc, paragraph, produce
from tests.integration.fake_openai import FakeOpenAI
from tests.kafka_support import free_port
from tests.secret_scan import register_secret

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

GOOD_KEY = register_secret("sk-test-good")
BAD_KEY = register_secret("sk-test-revoked")
DOCS = 20
OUTAGE_S = 120.0


@pytest.fixture(scope="module")
def broker(module_broker: str) -> str:
    return module_broker


def documents(kind: str) -> tuple[str, list[dict[str, object]], list[str]]:
    """A fresh doc-id prefix, the documents of the stream, and their ids."""
    prefix = f"{kind}-{uuid.uuid4().hex[:6]}"
    rng = random.Random(prefix)
    docs = [
        make_doc(f"{prefix}-{i:02d}", 1, [paragraph(rng, f"Firm{i} p{p}") for p in range(2)])
        for i in range(DOCS)
    ]
    return prefix, docs, [str(d["doc_id"]) for d in docs]


def openai_worker(broker: str, data_dir: Path, server: FakeOpenAI, key: str) -> Worker:
    return Worker(
        bootstrap=broker,
        data_dir=data_dir,
        app_id=f"faults-{uuid.uuid4().hex[:6]}",
        http_port=free_port(),
        env={
            "TICKERWIRE_EMBEDDER": "openai",
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": server.base_url,
            "TICKERWIRE_OPENAI_DIMENSIONS": "64",
        },
    )


def all_indexed(worker: Worker, ids: list[str]) -> bool:
    return all(worker.document_ids(doc_id) for doc_id in ids)


def test_a_rejected_key_stops_the_worker_and_a_restart_with_a_good_key_indexes_everything(
    broker: str, tmp_path: Path
) -> None:
    prefix, docs, ids = documents("key")
    with fake_openai_server() as server:
        server.api_keys = {GOOD_KEY}
        worker = openai_worker(broker, tmp_path / "data", server, BAD_KEY)
        worker.start()
        try:
            produce(broker, docs)
            proc = worker.proc
            assert proc is not None
            wait_until(lambda: proc.poll() is not None, 120, "the worker to stop itself")
            log = worker.log_path.read_text(errors="replace")
            assert "fatal_error_stopping_worker" in log, worker.log_tail()
            assert "EmbeddingRejectedError" in log
            assert server.requests and {r.authorization for r in server.requests} == {
                f"Bearer {BAD_KEY}"
            }
            assert dead_letters(broker, prefix) == []  # not one record dead-lettered
            worker.proc = None

            worker.env["OPENAI_API_KEY"] = GOOD_KEY
            worker.start()
            wait_until(lambda: all_indexed(worker, ids), 180, f"{DOCS} documents indexed")
            assert dead_letters(broker, prefix) == []
            assert worker.stop() == 0
        finally:
            worker.close()


def test_a_two_minute_embedding_outage_dead_letters_nothing_and_the_stream_completes(
    broker: str, tmp_path: Path
) -> None:
    prefix, docs, ids = documents("outage")
    with fake_openai_server() as server:
        worker = openai_worker(broker, tmp_path / "data", server, GOOD_KEY)
        worker.start()
        try:
            server.down_until = time.monotonic() + OUTAGE_S
            produce(broker, docs)
            wait_until(
                lambda: worker.metric("tickerwire_stage_retries_total", stage="embed") > 0,
                60,
                "the embed stage to retry",
            )
            # Shortly before the outage ends: the batch is held, nothing indexed, nothing dead.
            wait_until(lambda: time.monotonic() >= server.down_until - 5, OUTAGE_S, "the outage")
            assert not any(worker.document_ids(doc_id) for doc_id in ids)
            assert dead_letters(broker, prefix) == []
            failed = len(server.requests)
            assert failed >= 4, failed  # the worker kept asking through the outage

            wait_until(lambda: all_indexed(worker, ids), 180, f"{DOCS} documents indexed")
            assert dead_letters(broker, prefix) == []
            assert worker.metric("tickerwire_dlq_records_total", stage="embed") == 0
            assert worker.stop() == 0
        finally:
            worker.close()
