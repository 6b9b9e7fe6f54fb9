"""The producer SDK and `tickerwire produce` against a real Kafka broker."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from tests.kafka_support import free_port
from tickerwire.adapters.kafka_admin import load_topic_specs
from tickerwire.core.errors import TooLargeError, ValidationError
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings
from tickerwire.core.topics import DLQ_TOPIC, RAW_TOPIC
from tickerwire.produce import DocumentProducer
from tickerwire.produce.producer import record_limit

CLI = "from tickerwire.cli.produce import app; app(prog_name='tickerwire produce')"


def doc(doc_id: str, version: int, **changes: Any) -> RawDocument:
    fields: dict[str, Any] = {
        "doc_id": doc_id,
        "op": "upsert",
        "version": version,
        "source": "test",
        "doc_type": "news",
        "title": f"{doc_id} v{version}",
        "body": f"Body of {doc_id} at version {version}.",
        "content_type": "text/plain",
        "published_at": "2026-11-27T10:00:00Z",
        "tickers": ["AAPL"],
    }
    return RawDocument(**(fields | changes))


@pytest.fixture
def new_producer(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> Callable[[], DocumentProducer]:
    """Makes a producer, not started, for a topic of its own (the test holds the only reference)."""

    def make() -> DocumentProducer:
        (topic,) = kafka_topics()
        return DocumentProducer(kafka_bootstrap, topic=topic)

    return make


async def consume(bootstrap: str, topic: str, count: int, wait_s: float = 30.0) -> list[Any]:
    """The first ``count`` records of ``topic`` (all partitions, from the beginning)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(wait_s):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    records.extend(messages)
    finally:
        await consumer.stop()
    return records


def produced_total(topic: str) -> float:
    return REGISTRY.get_sample_value("tickerwire_producer_records_total", {"topic": topic}) or 0.0


def rejected_total(error_class: str) -> float:
    value = REGISTRY.get_sample_value(
        "tickerwire_producer_rejected_total", {"error_class": error_class}
    )
    return value or 0.0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- SDK --------------------------------------------------------------------------------------


@pytest.mark.kafka
async def test_documents_arrive_with_their_keys_and_values_in_order_per_key(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    (topic,) = kafka_topics(partitions=3)
    keys = [f"doc-{n}" for n in range(6)]
    versions = range(1, 5)
    docs = [doc(key, version) for version in versions for key in keys]
    before = produced_total(topic)

    async with DocumentProducer(kafka_bootstrap, topic=topic) as producer:
        first = await producer.send(docs[0])
        results = await producer.send_batch(docs[1:])
    assert first.topic == topic
    assert len(results) == len(docs) - 1
    assert produced_total(topic) - before == len(docs)

    records = await consume(kafka_bootstrap, topic, len(docs))
    assert len(records) == len(docs)
    assert {(r.key, r.value) for r in records} == {(d.key, d.to_bytes()) for d in docs}
    by_key: dict[bytes, list[int]] = {}
    partitions: dict[bytes, set[int]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(json.loads(record.value)["version"])
        partitions.setdefault(record.key, set()).add(record.partition)
    assert by_key == {key.encode(): list(versions) for key in keys}
    assert all(len(p) == 1 for p in partitions.values())


@pytest.mark.kafka
async def test_invalid_documents_are_rejected_before_kafka(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    (topic,) = kafka_topics()
    bad = doc("ok", 1).to_json_dict() | {"published_at": "yesterday"}
    validation_before = rejected_total("ValidationError")
    too_large_before = rejected_total("TooLargeError")
    async with DocumentProducer(kafka_bootstrap, topic=topic, max_body_bytes=100) as producer:
        with pytest.raises(ValidationError, match=r"\$\.published_at: 'yesterday'"):
            await producer.send(bad)
        with pytest.raises(TooLargeError):
            await producer.send(doc("big", 1, body="x" * 101))
        with pytest.raises(ValidationError):
            await producer.send_batch([doc("a", 1), bad])
        results = await producer.send_batch([doc("a", 1), bad, doc("b", 1)], return_exceptions=True)
        await producer.send(
            {"schema": "raw-document/v1", "doc_id": "c", "op": "delete", "version": 2}
        )
    assert [type(r).__name__ for r in results] == [
        "RecordMetadata",
        "ValidationError",
        "RecordMetadata",
    ]
    assert rejected_total("ValidationError") - validation_before == 3
    assert rejected_total("TooLargeError") - too_large_before == 1

    records = await consume(kafka_bootstrap, topic, 3)
    assert [r.key for r in records] == [b"a", b"b", b"c"]


@pytest.mark.kafka
@pytest.mark.parametrize("name", [RAW_TOPIC, DLQ_TOPIC])
async def test_a_body_under_the_body_limit_fits_every_topic_that_carries_it(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]], name: str
) -> None:
    # Over Kafka's default message limit (1 MiB), under TICKERWIRE_MAX_BODY_BYTES (2 MiB): the
    # topic configs of topics.yaml must let it through, raw and dead-lettered alike.
    spec = next(s for s in load_topic_specs() if s.name == name)
    (topic,) = kafka_topics(cleanup_policy=spec.cleanup_policy, config=dict(spec.config))
    body = "x" * (Settings().max_body_bytes - 1024)
    async with DocumentProducer(kafka_bootstrap, topic=topic) as producer:
        await producer.send(doc("big", 1, body=body))
    (record,) = await consume(kafka_bootstrap, topic, 1)
    assert json.loads(record.value)["body"] == body


@pytest.mark.kafka
async def test_a_record_over_the_topics_message_limit_names_that_limit(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    (topic,) = kafka_topics(config={"max.message.bytes": "100000"})
    async with DocumentProducer(kafka_bootstrap, topic=topic) as producer:
        with pytest.raises(TooLargeError, match=r"max\.message\.bytes") as info:
            await producer.send(doc("big", 1, body="x" * 200_000))
    assert "TICKERWIRE_MAX_BODY_BYTES" not in str(info.value)  # not the body limit
    with pytest.raises(TooLargeError, match="TICKERWIRE_MAX_BODY_BYTES"):
        DocumentProducer(kafka_bootstrap, topic=topic, max_body_bytes=10).prepare(
            doc("big", 1, body="x" * 11)
        )


def test_topics_that_carry_bodies_take_the_largest_record_a_body_can_make() -> None:
    specs = {s.name: s for s in load_topic_specs()}
    limit = record_limit(Settings().max_body_bytes)
    assert int(specs[RAW_TOPIC].config["max.message.bytes"]) >= limit
    assert int(specs[DLQ_TOPIC].config["max.message.bytes"]) > limit


@pytest.mark.kafka
async def test_close_is_idempotent_and_a_closed_producer_refuses_to_send(
    new_producer: Callable[[], DocumentProducer],
) -> None:
    producer = new_producer()
    with pytest.raises(RuntimeError, match="not started"):
        await producer.send(doc("a", 1))
    await producer.start()
    await producer.start()
    await producer.close()
    await producer.close()
    with pytest.raises(RuntimeError, match="closed"):
        await producer.send(doc("a", 1))
    with pytest.raises(RuntimeError, match="closed"):
        await producer.start()


@pytest.mark.kafka
async def test_an_unclosed_producer_warns_when_garbage_collected(
    new_producer: Callable[[], DocumentProducer],
) -> None:
    producer = new_producer()
    await producer.start()
    inner = producer._producer
    assert inner is not None
    with pytest.warns(ResourceWarning, match="unclosed <DocumentProducer"):
        del producer
        gc.collect()
    await inner.stop()


# --- CLI --------------------------------------------------------------------------------------


@pytest.mark.kafka
def test_cli_produces_good_lines_and_reports_bad_ones(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]], tmp_path: Path
) -> None:
    (topic,) = kafka_topics(partitions=2)
    good = [doc("cli-1", 1), doc("cli-2", 1), doc("cli-1", 2)]
    path = tmp_path / "feed.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                good[0].to_bytes(),
                b"{not json",
                good[1].to_bytes(),
                json.dumps(doc("x", 1).to_json_dict() | {"version": -1}).encode(),
                good[2].to_bytes(),
            ]
        )
        + b"\n"
    )
    missing = tmp_path / "missing.csv"

    result = run_cli(str(path), str(missing), "--topic", topic, "--bootstrap", kafka_bootstrap)

    assert result.returncode == 1, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "produced 3, rejected 3"
    errors = result.stderr.splitlines()
    assert (
        f"{path}:2: invalid JSON at column 2: Expecting property name enclosed in double quotes"
        in errors
    )
    assert f"{path}:4: $.version: -1 is less than the minimum of 0" in errors
    assert f"{missing}:0: No such file or directory" in errors

    records = asyncio.run(consume(kafka_bootstrap, topic, 3))
    assert sorted((r.key, r.value) for r in records) == sorted((d.key, d.to_bytes()) for d in good)


@pytest.mark.kafka
def test_cli_produces_the_whole_sample_feed(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    (topic,) = kafka_topics(partitions=3)
    sample = Path(__file__).resolve().parents[2] / "deploy" / "sample"
    result = run_cli(str(sample), "--topic", topic, "--bootstrap", kafka_bootstrap)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "produced 86, rejected 0"


def test_cli_dry_run_reads_and_validates_without_kafka(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(doc("a", 1).to_bytes() + b"\n" + b"[]\n")
    result = run_cli(str(path), "--dry-run", "--bootstrap", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stdout.strip() == "produced 1, rejected 1 (dry run: nothing sent)"
    assert f"{path}:2: $: expected a JSON object, got list" in result.stderr


def test_cli_dry_run_of_clean_input_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(doc("a", 1).to_bytes() + b"\n")
    result = run_cli(str(path), "--dry-run")
    assert result.returncode == 0, result.stderr


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli().returncode == 2
    assert run_cli(str(tmp_path), "--max-body-bytes", "0").returncode == 2


def test_cli_reports_an_unreachable_broker(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(doc("a", 1).to_bytes() + b"\n")
    bootstrap = f"127.0.0.1:{free_port()}"
    result = run_cli(str(path), "--bootstrap", bootstrap)
    assert result.returncode == 1
    assert f"error: cannot produce to Kafka at {bootstrap}" in result.stderr
