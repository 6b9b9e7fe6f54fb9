"""Restarts during a 2,000-document stream: kill -9 three times, or SIGTERM, kill -9 and SIGTERM.

The stream mixes new documents, updates and deletes. After the last restart the index must hold
exactly the chunk ids of every live document's latest version: nothing lost, nothing duplicated,
nothing stale. This test runs its own broker, so no other test's records are in its topics.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stream_support import own_broker as start_own_broker
from tests.e2e.stream_support import stage_lag
from tests.e2e.support import Worker, assert_exact_index, expected_for, wait_until
from tests.e2e.test_pipeline_e2e import delete_doc, make_doc, paragraph, produce
from tests.kafka_support import free_port
from tickerwire.core.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 2000
CHUNK_TOKENS = 64


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_own_broker(tmp_path_factory.mktemp("kafka-crash")) as bootstrap:
        yield bootstrap


def stream(
    rng: random.Random, docs: int = DOCS, batch: int = 50
) -> tuple[list[list[dict[str, Any]]], dict[str, dict[str, Any] | None]]:
    """Batches to produce in order, and the final state of every document (None: deleted)."""
    final: dict[str, dict[str, Any] | None] = {}
    records: list[dict[str, Any]] = []
    for i in range(docs):
        d = make_doc(f"crash-{i:04d}", 1, [paragraph(rng, f"Firm{i} p{p}") for p in range(2)])
        records.append(d)
        final[d["doc_id"]] = d
        if i % 10 == 5:  # an update of an earlier document, one paragraph changed
            j = rng.randrange(i)
            old = final[f"crash-{j:04d}"]
            if old is not None:
                paras = old["body"].split("\n\n")
                paras[0] = paragraph(rng, f"Firm{j} v{old['version'] + 1}")
                new = make_doc(old["doc_id"], old["version"] + 1, paras)
                records.append(new)
                final[new["doc_id"]] = new
        if i % 20 == 7:  # a delete of an earlier document
            j = rng.randrange(i)
            key = f"crash-{j:04d}"
            prev = final[key]
            records.append(delete_doc(key, (prev["version"] if prev else 1) + 1))
            final[key] = None
    batches = [records[k : k + batch] for k in range(0, len(records), batch)]
    return batches, final


@pytest.mark.parametrize(
    "restarts",
    [("kill9", "kill9", "kill9"), ("sigterm", "kill9", "sigterm")],
    ids=["kill9-x3", "sigterm-kill9-sigterm"],
)
def test_restarts_mid_stream_leave_an_exact_index(
    own_broker: str, tmp_path: Path, restarts: tuple[str, ...]
) -> None:
    rng = random.Random(2026)
    batches, final = stream(rng)
    cfg = Settings(chunk_tokens=CHUNK_TOKENS, chunk_overlap=0, data_dir=tmp_path / "data")
    expected = expected_for(cfg, final.values())
    all_expected = set().union(*expected.values())

    app_id = f"crash-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        bootstrap=own_broker,
        data_dir=cfg.data_dir,
        app_id=app_id,
        http_port=free_port(),
        env={"TICKERWIRE_CHUNK_TOKENS": str(CHUNK_TOKENS), "TICKERWIRE_CHUNK_OVERLAP": "0"},
    )
    done = threading.Event()
    produced = [0]  # batches produced so far

    def producer() -> None:
        for batch in batches:
            produce(own_broker, batch)
            produced[0] += 1
            time.sleep(0.05)  # pacing: the stream arrives over time, not in one burst
        done.set()

    def points() -> int:
        return int(worker.client.get("/v1/status").json()["points"])

    worker.start()
    feeder = threading.Thread(target=producer, daemon=True)
    feeder.start()
    try:
        for n, how in enumerate(restarts, start=1):
            # Restart mid-stream: once the stream is a random share further along and this
            # worker has indexed something of it (conditions, not fixed sleeps).
            share = (n - 1 + rng.uniform(0.3, 0.9)) / (len(restarts) + 1)
            target = int(share * len(batches))
            wait_until(lambda t=target: produced[0] >= t, 300, f"{target} batches produced")
            before = points()
            wait_until(lambda b=before: points() > b, 300, "the worker to index more points")
            if how == "kill9":
                worker.kill9()
            else:
                assert worker.stop() == 0, worker.log_tail()
            worker.start()
        feeder.join(timeout=300)
        assert done.is_set(), "the producer did not finish"

        def settled() -> bool:
            return points() == len(all_expected)

        wait_until(settled, 400, f"{len(all_expected)} points")
        # Nothing still arriving could change the count: every stage has committed every record.
        wait_until(lambda: stage_lag(own_broker, app_id) == 0, 120, "no consumer lag")
        assert settled()
        assert worker.stop() == 0
    finally:
        worker.close()

    assert_exact_index(cfg, final, expected)
    # How often the sequencer had to re-read records faust fetched but never delivered (shown
    # with `pytest -rP`): the index above is exact either way.
    logs = sorted(cfg.data_dir.glob("worker-*.log"))
    rereads = sum(p.read_text(errors="replace").count("undelivered_records_reread") for p in logs)
    print(f"restarts={'/'.join(restarts)} undelivered_records_reread={rereads}")
