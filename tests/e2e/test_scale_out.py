"""Scale-out: one process per stage replica on 4-partition topics, two of them killed mid-stream.

Two ``preprocess`` processes share a consumer group, as do two ``embed`` processes; one ``index``
process owns the Edge shard (and serves the query API). Once both have processed records, one
preprocess and one embed process get SIGKILL while documents stream (new, updated, deleted).
Their partitions move to the survivors, and the final index holds exactly the chunk ids of every
live document's latest version, audited id by id. The test runs its own broker with 4-partition
topics, so no other test's records are in its topics.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import Worker, assert_exact_index, expected_for, wait_until
from tests.e2e.test_crash_recovery import stream
from tests.e2e.test_pipeline_e2e import produce
from tests.kafka_support import free_port, private_broker, run_async
from tickerwire.adapters.kafka_admin import topic_partitions
from tickerwire.core.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PARTITIONS = 4
DOCS = 300
CHUNK_TOKENS = 64


@pytest.fixture
def broker4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own whose tickerwire topics have 4 partitions."""
    with private_broker(tmp_path_factory.mktemp("kafka-scale"), partitions=PARTITIONS) as b:
        yield b


def stage_worker(stage: str, n: int, *, bootstrap: str, root: Path, app_id: str) -> Worker:
    """``tickerwire worker STAGE``, ready once its metrics port answers. The index process also
    serves the query API (``--http``, /metrics on the API port, no separate metrics port)."""
    port = free_port()
    env = {
        "TICKERWIRE_KAFKA_PARTITIONS": str(PARTITIONS),
        "TICKERWIRE_METRICS_PORT": "0" if stage == "index" else str(port),
        "TICKERWIRE_LAG_INTERVAL_S": "2",
        "TICKERWIRE_CHUNK_TOKENS": str(CHUNK_TOKENS),
        "TICKERWIRE_CHUNK_OVERLAP": "0",
        "TICKERWIRE_EMBED_THREADS": "1",  # two model processes share the machine's cores
    }
    return Worker(
        bootstrap=bootstrap,
        data_dir=root / f"{stage}-{n}",
        app_id=app_id,
        http_port=port,
        env=env,
        command=("worker", stage, "--http") if stage == "index" else ("worker", stage),
        ready_path="/readyz" if stage == "index" else "/metrics",
    )


def processed(worker: Worker, stage: str) -> float:
    """Records ``stage`` consumed in this process so far (any outcome)."""
    return worker.metric("tickerwire_stage_records_total", stage=stage)


def lag_series(worker: Worker) -> list[dict[str, str]]:
    """The label sets of tickerwire_consumer_lag_records on the worker's /metrics."""
    text = worker.client.get("/metrics").text
    return [
        s.labels
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tickerwire_consumer_lag_records"
    ]


def _partitions(bootstrap: str, topic: str) -> Callable[[], Coroutine[Any, Any, list[int]]]:
    return lambda: topic_partitions(bootstrap, topic)


def _has_processed(worker: Worker, stage: str) -> Callable[[], bool]:
    return lambda: processed(worker, stage) > 0


def test_killed_replicas_hand_their_partitions_over_and_the_index_is_exact(
    broker4: str, tmp_path: Path
) -> None:
    for topic in ("tickerwire.docs.raw", "tickerwire.docs.chunks", "tickerwire.docs.vectors"):
        assert run_async(_partitions(broker4, topic)) == list(range(PARTITIONS))
    rng = random.Random(4)
    batches, final = stream(rng, DOCS, batch=20)
    cfg = Settings(chunk_tokens=CHUNK_TOKENS, chunk_overlap=0)
    expected = expected_for(cfg, final.values())
    all_expected = set().union(*expected.values())

    app_id = f"scale-{uuid.uuid4().hex[:6]}"
    root = tmp_path / "procs"
    index = stage_worker("index", 0, bootstrap=broker4, root=root, app_id=app_id)
    replicas = {
        (stage, n): stage_worker(stage, n, bootstrap=broker4, root=root, app_id=app_id)
        for stage in ("embed", "preprocess")
        for n in (0, 1)
    }
    procs = [index, *replicas.values()]
    victims = [("preprocess", replicas["preprocess", 0]), ("embed", replicas["embed", 0])]
    survivors = [("preprocess", replicas["preprocess", 1]), ("embed", replicas["embed", 1])]
    done = threading.Event()

    def feed() -> None:
        for batch in batches:
            produce(broker4, batch)
            time.sleep(0.2)
        done.set()

    try:
        for p in procs:
            p.start(timeout=180)
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        # Mid-stream: once each victim has processed records from its share of the partitions.
        for stage, p in victims:
            wait_until(_has_processed(p, stage), 120, f"a {stage} victim to process records")
        assert not done.is_set(), "the stream ended before the kill: make it longer"
        before = [processed(p, stage) for stage, p in survivors]
        for _, p in victims:
            p.kill9()
        feeder.join(timeout=300)
        assert done.is_set(), "the producer did not finish"

        def settled() -> bool:
            points = index.client.get("/v1/status").json()["points"]
            return int(points) == len(all_expected)

        wait_until(settled, 240, f"{len(all_expected)} points")
        time.sleep(3)  # anything still arriving would change the count again
        assert settled()
        # The survivors took the victims' partitions over: they consumed more after the kill.
        for (stage, p), count in zip(survivors, before, strict=True):
            assert processed(p, stage) > count, stage
        # Every worker reports its own group's consumer lag on its metrics port.
        lag = lag_series(survivors[1][1])
        assert {labels["group"] for labels in lag} == {f"{app_id}-embed"}
        assert {int(labels["partition"]) for labels in lag} >= set(range(PARTITIONS))
        assert index.stop() == 0, index.log_tail()
    finally:
        for p in procs:
            p.close()

    assert_exact_index(Settings(data_dir=index.data_dir), final, expected)
