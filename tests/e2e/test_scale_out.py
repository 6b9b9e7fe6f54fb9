"""Scale-out: one process per stage replica on 4-partition topics, two of them killed mid-stream.

Two ``preprocess`` processes share a consumer group, as do two ``embed`` processes; one ``index``
process owns the Edge shard (and serves the query API). Once both have processed records, one
preprocess and one embed process get SIGKILL while documents stream (new, updated, deleted).
Their partitions move to the survivors, and the final index holds exactly the chunk ids of every
live document's latest version, audited id by id. The test runs its own broker with 4-partition
topics, so no other test's records are in its topics.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import TICKERWIRE, expected_chunk_ids, wait_until
from tests.e2e.test_pipeline_e2e import delete_doc, make_doc, paragraph, produce
from tests.kafka_support import free_port, free_ports, run_async
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.index_factory import open_index
from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs, topic_partitions
from tickerwire.core.settings import Settings
from tickerwire.localbroker import REPO_ROOT, LocalBroker
from tickerwire.runtime import chunker_for

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PARTITIONS = 4
DOCS = 300
CHUNK_TOKENS = 64


@pytest.fixture
def broker4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own whose tickerwire topics have 4 partitions."""
    port, cport = free_ports(2)
    broker = LocalBroker(
        port,
        tmp_path_factory.mktemp("kafka-scale"),
        REPO_ROOT / ".tickerwire" / "kafka" / "libs",
        "512m",
        controller_port=cport,
        partitions=PARTITIONS,
    )
    broker.up(timeout=180)
    try:
        run_async(
            lambda: ensure_topics(broker.bootstrap, load_topic_specs(), partitions=PARTITIONS)
        )
        yield broker.bootstrap
    finally:
        broker.down()


class StageProcess:
    """One ``tickerwire worker STAGE`` process with its own data dir and metrics port."""

    def __init__(self, stage: str, n: int, *, bootstrap: str, root: Path, app_id: str) -> None:
        self.name = f"{stage}-{n}"
        self.stage = stage
        self.data_dir = root / self.name
        self.data_dir.mkdir(parents=True)
        self.metrics_port = free_port()
        self.http_port = free_port() if stage == "index" else None
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TICKERWIRE_KAFKA_BOOTSTRAP": bootstrap,
            "TICKERWIRE_DATA_DIR": str(self.data_dir),
            "TICKERWIRE_APP_ID": app_id,
            "TICKERWIRE_KAFKA_PARTITIONS": str(PARTITIONS),
            "TICKERWIRE_METRICS_PORT": str(self.metrics_port),
            "TICKERWIRE_LAG_INTERVAL_S": "2",
            "TICKERWIRE_CHUNK_TOKENS": str(CHUNK_TOKENS),
            "TICKERWIRE_CHUNK_OVERLAP": "0",
            # two model processes share the machine's cores
            "TICKERWIRE_EMBED_THREADS": "1",
            "TICKERWIRE_LOG_LEVEL": "warning",
        }
        if self.http_port is not None:
            self.env["TICKERWIRE_HTTP_PORT"] = str(self.http_port)
        args = [TICKERWIRE, "worker", stage] + (["--http"] if stage == "index" else [])
        self.log = self.data_dir / "worker.log"
        with self.log.open("wb") as out:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.metrics = httpx.Client(base_url=f"http://127.0.0.1:{self.metrics_port}", timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
        try:
            return self.metrics.get("/metrics").status_code == 200
        except httpx.HTTPError:
            return False

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        text = self.metrics.get("/metrics").text
        return [
            (s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        ]

    def processed(self) -> float:
        """Records this process's stage consumed so far (any outcome)."""
        return sum(
            v
            for labels, v in self.samples("tickerwire_stage_records_total")
            if labels.get("stage") == self.stage
        )

    def has_processed(self) -> bool:
        return self.processed() > 0

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.metrics.close()


def _partitions(bootstrap: str, topic: str) -> Callable[[], Coroutine[Any, Any, list[int]]]:
    return lambda: topic_partitions(bootstrap, topic)


def stream(rng: random.Random) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """Batches to produce in order, and every document's final state (None: deleted)."""
    final: dict[str, dict[str, Any] | None] = {}
    records: list[dict[str, Any]] = []
    for i in range(DOCS):
        d = make_doc(f"scale-{i:04d}", 1, [paragraph(rng, f"Firm{i} p{p}") for p in range(2)])
        records.append(d)
        final[d["doc_id"]] = d
        if i % 10 == 5:
            j = rng.randrange(i)
            old = final[f"scale-{j:04d}"]
            if old is not None:
                paras = old["body"].split("\n\n")
                paras[0] = paragraph(rng, f"Firm{j} v{old['version'] + 1}")
                new = make_doc(old["doc_id"], old["version"] + 1, paras)
                records.append(new)
                final[new["doc_id"]] = new
        if i % 20 == 7:
            j = rng.randrange(i)
            key = f"scale-{j:04d}"
            prev = final[key]
            records.append(delete_doc(key, (prev["version"] if prev else 1) + 1))
            final[key] = None
    return [records[k : k + 20] for k in range(0, len(records), 20)], final


def test_killed_replicas_hand_their_partitions_over_and_the_index_is_exact(
    broker4: str, tmp_path: Path
) -> None:
    for topic in ("tickerwire.docs.raw", "tickerwire.docs.chunks", "tickerwire.docs.vectors"):
        assert run_async(_partitions(broker4, topic)) == list(range(PARTITIONS))
    rng = random.Random(4)
    batches, final = stream(rng)
    cfg = Settings(chunk_tokens=CHUNK_TOKENS, chunk_overlap=0)
    embedder = open_embedder(cfg)
    try:
        live = [d for d in final.values() if d is not None]
        expected = expected_chunk_ids(live, chunker_for(cfg, embedder))
    finally:
        run_async(embedder.aclose)
    all_expected = set().union(*expected.values())

    app_id = f"scale-{uuid.uuid4().hex[:6]}"
    root = tmp_path / "procs"
    index = StageProcess("index", 0, bootstrap=broker4, root=root, app_id=app_id)
    procs = [index] + [
        StageProcess(stage, n, bootstrap=broker4, root=root, app_id=app_id)
        for stage in ("embed", "preprocess")
        for n in (0, 1)
    ]
    by_name = {p.name: p for p in procs}
    victims = [by_name["preprocess-0"], by_name["embed-0"]]
    survivors = [by_name["preprocess-1"], by_name["embed-1"]]
    done = threading.Event()

    def feed() -> None:
        for batch in batches:
            produce(broker4, batch)
            time.sleep(0.2)
        done.set()

    try:
        for p in procs:
            wait_until(p.ready, 180, f"{p.name} to serve /metrics")
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        # Mid-stream: once each victim has processed records from its share of the partitions.
        for p in victims:
            wait_until(p.has_processed, 120, f"{p.name} to process records")
        assert not done.is_set(), "the stream ended before the kill: make it longer"
        before = {p.name: p.processed() for p in survivors}
        for p in victims:
            p.kill9()
        feeder.join(timeout=300)
        assert done.is_set(), "the producer did not finish"

        status = httpx.Client(base_url=f"http://127.0.0.1:{index.http_port}", timeout=10)

        def settled() -> bool:
            return int(status.get("/v1/status").json()["points"]) == len(all_expected)

        wait_until(settled, 240, f"{len(all_expected)} points")
        time.sleep(3)  # anything still arriving would change the count again
        assert settled()
        status.close()
        # The survivors took the victims' partitions over: they consumed more after the kill.
        for p in survivors:
            assert p.processed() > before[p.name], p.name
        # Every worker reports its group's consumer lag on its own metrics port.
        lag = survivors[1].samples("tickerwire_consumer_lag_records")
        assert {labels["group"] for labels, _ in lag} == {f"{app_id}-embed"}
        assert {int(labels["partition"]) for labels, _ in lag} >= set(range(PARTITIONS))
        assert index.stop() == 0, index.log_tail()
    finally:
        for p in procs:
            p.close()

    async def audit() -> tuple[set[str], dict[str, set[str]]]:
        shard = open_index(Settings(data_dir=index.data_dir), 384)
        await shard.ensure_collection(384)
        try:
            ids = await shard.all_point_ids()
            per_doc = {d: await shard.document_point_ids(d) for d in final}
            return ids, per_doc
        finally:
            await shard.aclose()

    ids, per_doc = run_async(audit)
    assert ids == all_expected, (
        f"missing {len(all_expected - ids)}, unexpected {len(ids - all_expected)}"
    )
    for doc_id, doc in final.items():
        assert per_doc[doc_id] == (expected[doc_id] if doc is not None else set()), doc_id
