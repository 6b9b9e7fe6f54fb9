"""With the queries topic unwritable (its broker stopped), /v1/ask still answers and the log
records that could not be buffered are dropped and counted; the API key is logged only hashed.

The broker is private to this test (a LocalBroker on free loopback ports) so it can be stopped;
the answer side is in-process (the real Edge index, the offline answer model).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.integration.test_ask_api import DOCS, QUESTION
from tests.kafka_support import free_ports
from tests.query_support import load_index, query_app
from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs
from tickerwire.adapters.query_log import KafkaQueryLog, read_topic
from tickerwire.core.records import QueryLogRecord
from tickerwire.core.settings import Settings
from tickerwire.core.topics import QUERIES_TOPIC
from tickerwire.localbroker import REPO_ROOT, LocalBroker
from tickerwire.query.learning import QueryRecorder, key_hasher

pytestmark = [pytest.mark.kafka]

API_KEY = "k-reliability-0123456789"
SALT = b"test-salt"
BUFFER = 4
ASKS_WHILE_DOWN = 12


def sample(outcome: str) -> float:
    labels = {"topic": QUERIES_TOPIC, "outcome": outcome}
    return REGISTRY.get_sample_value("tickerwire_query_log_records_total", labels) or 0.0


async def wait_for(check: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_ask_answers_with_the_broker_stopped_and_dropped_records_are_counted(
    tmp_path: Path,
) -> None:
    port, cport = free_ports(2)
    broker = LocalBroker(
        port,
        tmp_path / "kafka",
        REPO_ROOT / ".tickerwire" / "kafka" / "libs",
        "512m",
        controller_port=cport,
    )
    await asyncio.to_thread(broker.up, 180)
    try:
        await ensure_topics(broker.bootstrap, load_topic_specs())
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            api_keys=[API_KEY],  # type: ignore[list-item]
            ask_min_evidence=0.3,
        )
        sink = KafkaQueryLog(settings, maxsize=BUFFER)
        async with await load_index(tmp_path / "edge", DOCS) as index:
            app = query_app(
                index, settings, recorder=QueryRecorder(sink), hash_key=key_hasher(SALT)
            )
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers=headers, timeout=60
            ) as http:
                sent = sample("sent")
                first = (await http.post("/v1/ask", json={"question": QUESTION})).json()
                await wait_for(lambda: sample("sent") > sent, 60, "the first record to be sent")
                logged = [
                    QueryLogRecord.from_bytes(v)
                    for v in await read_topic(settings, QUERIES_TOPIC)
                    if first["query_id"].encode() in v
                ]
                assert len(logged) == 1
                assert logged[0].key_hash == key_hasher(SALT)(API_KEY)
                assert API_KEY not in logged[0].model_dump_json()

                await asyncio.to_thread(broker.down)
                dropped = sample("dropped")
                for _ in range(ASKS_WHILE_DOWN):
                    resp = await http.post("/v1/ask", json={"question": QUESTION})
                    assert resp.status_code == 200, resp.text
                    assert resp.json()["grounded"] is True
                    assert resp.json()["answer"] == first["answer"]
            # At most BUFFER records wait, and the sender holds at most the ones it was sending
            # when the broker went away: every other record was dropped and counted.
            assert sample("dropped") - dropped == sink.dropped
            assert sink.dropped >= ASKS_WHILE_DOWN - BUFFER - 2
            await sink.aclose(flush_s=0.1)
    finally:
        await asyncio.to_thread(broker.down)
