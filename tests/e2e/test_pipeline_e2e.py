"""End to end on the real broker and the real ``tickerwire up`` process (offline model, Edge).

One worker serves the whole module; each test uses its own doc-id prefix, so documents other
tests put on the shared raw topic never interfere. Chunks are 64 tokens here, so that every
paragraph of a test document is its own chunk.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.e2e.support import TICKERWIRE, Worker, expected_chunk_ids, wait_until
from tests.kafka_support import free_port, run_async
from tickerwire.adapters.dlq import DlqFilter, read_dlq
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.core.settings import Settings
from tickerwire.produce.producer import DocumentProducer
from tickerwire.runtime import chunker_for
from tickerwire.stages.preprocess import ChunkerConfig

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

CHUNK_TOKENS = 64
WORDS = [
    "revenue",
    "margin",
    "guidance",
    "dividend",
    "buyback",
    "outlook",
    "demand",
    "supply",
    "inventory",
    "pricing",
    "segment",
    "growth",
    "decline",
    "quarter",
    "fiscal",
    "operating",
    "income",
    "cash",
    "flow",
    "capital",
    "expenditure",
    "backlog",
    "orders",
    "shipments",
    "customers",
    "contracts",
    "regulatory",
    "approval",
    "merger",
    "acquisition",
    "debt",
    "yield",
]


def paragraph(rng: random.Random, tag: str) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(30))
    return f"{tag} reported that {body}."


def make_doc(doc_id: str, version: int, paragraphs: list[str]) -> dict[str, Any]:
    return {
        "schema": "raw-document/v1",
        "doc_id": doc_id,
        "op": "upsert",
        "version": version,
        "source": "e2e",
        "doc_type": "news",
        "title": f"Story {doc_id}",
        "body": "\n\n".join(paragraphs),
        "content_type": "text/plain",
        "published_at": "2026-11-27T14:30:00Z",
        "tickers": ["ACME"],
    }


def delete_doc(doc_id: str, version: int) -> dict[str, Any]:
    return {"schema": "raw-document/v1", "doc_id": doc_id, "op": "delete", "version": version}


def produce(bootstrap: str, docs: list[dict[str, Any]]) -> None:
    async def go() -> None:
        async with DocumentProducer(bootstrap) as producer:
            await producer.send_batch(docs)

    run_async(go)


def produce_raw(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait("tickerwire.docs.raw", value=value, key=key)
        finally:
            await producer.stop()

    run_async(go)


@pytest.fixture(scope="module")
def settings() -> Iterator[ChunkerConfig]:
    """The worker's chunker (same tokenizer and budget), to compute the expected chunk ids."""
    cfg = Settings(chunk_tokens=CHUNK_TOKENS, chunk_overlap=0)
    embedder = open_embedder(cfg)
    try:
        yield chunker_for(cfg, embedder)
    finally:
        run_async(embedder.aclose)


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(
        bootstrap=kafka_bootstrap,
        data_dir=tmp_path_factory.mktemp("e2e-worker"),
        app_id=f"e2e-{uuid.uuid4().hex[:8]}",
        http_port=free_port(),
        env={
            "TICKERWIRE_CHUNK_TOKENS": str(CHUNK_TOKENS),
            "TICKERWIRE_CHUNK_OVERLAP": "0",
            "TICKERWIRE_MAX_BODY_BYTES": "8000",
        },
    )
    w.start()
    try:
        yield w
    finally:
        w.close()


def wait_indexed(worker: Worker, expected: dict[str, set[str] | None], timeout: float) -> None:
    """Wait until every document holds exactly its expected chunk ids (None: absent)."""
    pending = dict(expected)

    def done() -> bool:
        for doc_id, ids in list(pending.items()):
            if worker.document_ids(doc_id) == ids:
                del pending[doc_id]
            else:
                return False
        return True

    try:
        wait_until(done, timeout, f"{len(pending)} documents to be indexed exactly")
    except AssertionError:
        sample = next(iter(pending))
        got = worker.document_ids(sample)
        raise AssertionError(
            f"{len(pending)} documents not as expected; e.g. {sample}: expected "
            f"{pending[sample]}, got {got}\n{worker.log_tail()}"
        ) from None


@pytest.fixture(scope="module")
def corpus(worker: Worker, kafka_bootstrap: str, settings: ChunkerConfig) -> dict[str, Any]:
    """1,000 documents produced and indexed; shared by the tests that change them."""
    rng = random.Random(7)
    docs = [
        make_doc(f"e2e-{i:04d}", 1, [paragraph(rng, f"Company{i} part{p}") for p in range(3)])
        for i in range(1000)
    ]
    expected = expected_chunk_ids(docs, settings)
    produce(kafka_bootstrap, docs)
    wait_indexed(worker, dict(expected), timeout=600)
    return {"docs": {d["doc_id"]: d for d in docs}, "expected": expected}


def test_a_thousand_documents_become_searchable(worker: Worker, corpus: dict[str, Any]) -> None:
    expected: dict[str, set[str]] = corpus["expected"]
    total = sum(len(ids) for ids in expected.values())
    assert total >= 2000  # most documents have several chunks
    found = sum(len(worker.document_ids(d) or ()) for d in expected)
    assert found == total
    hits = worker.search("Company123 part1", k=5, mode="sparse")["hits"]
    assert hits[0]["doc_id"] == "e2e-0123"
    body = worker.search("Company123 part1", k=5)
    assert body["watermark"]["indexed_at"] is not None


def test_unchanged_resend_embeds_and_writes_nothing(
    worker: Worker, corpus: dict[str, Any], kafka_bootstrap: str
) -> None:
    texts = worker.metric("tickerwire_embed_texts_total")
    upserts = worker.metric("tickerwire_index_points_upserted_total")
    writes = worker.metric("tickerwire_index_writes_total")
    unchanged = worker.metric("tickerwire_preprocess_documents_total", result="unchanged")
    produce(kafka_bootstrap, [corpus["docs"][f"e2e-{i:04d}"] for i in range(100)])
    wait_until(
        lambda: (
            worker.metric("tickerwire_preprocess_documents_total", result="unchanged")
            >= unchanged + 100
        ),
        120,
        "100 unchanged documents to be seen",
    )
    assert worker.metric("tickerwire_embed_texts_total") == texts
    assert worker.metric("tickerwire_index_points_upserted_total") == upserts
    assert worker.metric("tickerwire_index_writes_total") == writes


def test_updates_embed_only_changed_chunks_and_leave_nothing_stale(
    worker: Worker, corpus: dict[str, Any], kafka_bootstrap: str, settings: ChunkerConfig
) -> None:
    rng = random.Random(11)
    docs = corpus["docs"]
    updated = []
    for i in range(100, 200):
        old = docs[f"e2e-{i:04d}"]
        paras = old["body"].split("\n\n")
        paras[1] = paragraph(rng, f"Company{i} revised")
        updated.append(make_doc(old["doc_id"], 2, paras))
    expected = expected_chunk_ids(updated, settings)
    texts = worker.metric("tickerwire_embed_texts_total")
    produce(kafka_bootstrap, updated)
    wait_indexed(worker, dict(expected), timeout=300)
    changed = sum(len(expected[d] - corpus["expected"][d]) for d in expected)
    assert 100 <= changed < sum(len(ids) for ids in expected.values())
    wait_until(
        lambda: worker.metric("tickerwire_embed_texts_total") >= texts + changed,
        30,
        "the embed counter",
    )
    assert worker.metric("tickerwire_embed_texts_total") == texts + changed
    for doc_id, ids in expected.items():
        assert corpus["expected"][doc_id] - ids, "each update changed at least one chunk"
        assert ids & corpus["expected"][doc_id], "unchanged chunks keep their ids"
    corpus["expected"].update(expected)


def test_deleted_documents_leave_no_points(
    worker: Worker, corpus: dict[str, Any], kafka_bootstrap: str
) -> None:
    gone = [f"e2e-{i:04d}" for i in range(200, 250)]
    produce(kafka_bootstrap, [delete_doc(d, 5) for d in gone])
    wait_indexed(worker, dict.fromkeys(gone), timeout=120)
    assert worker.document_ids("e2e-0250") == corpus["expected"]["e2e-0250"]


def test_out_of_order_versions_leave_the_newest(
    worker: Worker, kafka_bootstrap: str, settings: ChunkerConfig
) -> None:
    rng = random.Random(3)
    v2 = make_doc("ooo-1", 2, [paragraph(rng, "Version two")])
    v1 = make_doc("ooo-1", 1, [paragraph(rng, "Version one")])
    stale = worker.metric("tickerwire_preprocess_documents_total", result="stale")
    produce(kafka_bootstrap, [v2])
    produce(kafka_bootstrap, [v1])
    wait_until(
        lambda: worker.metric("tickerwire_preprocess_documents_total", result="stale") > stale,
        120,
        "the stale version to be seen",
    )
    wait_indexed(worker, expected_chunk_ids([v2], settings), timeout=60)


def test_bad_records_go_to_the_dlq_with_reasons(
    worker: Worker, kafka_bootstrap: str, settings: ChunkerConfig
) -> None:
    rng = random.Random(5)
    good = [make_doc(f"dlq-ok-{i}", 1, [paragraph(rng, f"Good{i}")]) for i in range(30)]
    big = [make_doc(f"dlq-big-{i}", 1, [paragraph(rng, "Big") * 40]) for i in range(5)]
    bad: list[tuple[bytes, bytes]] = []
    for i in range(5):
        bad.append((f"dlq-json-{i}".encode(), b'{"schema": "raw-document/v1", "doc_id": '))
    for i in range(5):
        d = make_doc(f"dlq-date-{i}", 1, ["text"])
        d["published_at"] = "yesterday"
        bad.append((d["doc_id"].encode(), json.dumps(d).encode()))
    for i in range(5):
        bad.append((f"dlq-utf8-{i}".encode(), b'{"doc_id": "\xff\xfe"}'))
    bad += [(d["doc_id"].encode(), json.dumps(d).encode()) for d in big]
    records = [(d["doc_id"].encode(), json.dumps(d).encode()) for d in good[:15]]
    records += bad + [(d["doc_id"].encode(), json.dumps(d).encode()) for d in good[15:]]
    produce_raw(kafka_bootstrap, records)
    wait_indexed(worker, expected_chunk_ids(good, settings), timeout=120)

    keys = {k.decode() for k, _ in bad}

    def ours() -> list[Any]:
        entries = asyncio.run(read_dlq(kafka_bootstrap, DlqFilter(stage="preprocess")))
        return [e for e in entries if e.record.doc_id in keys]

    wait_until(lambda: len(ours()) >= 20, 60, "20 dead letters")
    entries = ours()
    assert len(entries) == 20
    classes = sorted({e.record.error_class for e in entries})
    assert classes == ["DecodeError", "TooLargeError", "ValidationError"]
    assert all(
        e.record.reason and e.record.original.topic == "tickerwire.docs.raw" for e in entries
    )
    dated = [e for e in entries if e.record.doc_id and e.record.doc_id.startswith("dlq-date")]
    assert all("published_at" in e.record.reason for e in dated)


def test_dead_letters_replay_after_a_fix(
    worker: Worker, kafka_bootstrap: str, settings: ChunkerConfig
) -> None:
    rng = random.Random(9)
    big = [make_doc(f"dlq-fix-{i}", 1, [paragraph(rng, "Large") * 40]) for i in range(5)]
    produce_raw(kafka_bootstrap, [(d["doc_id"].encode(), json.dumps(d).encode()) for d in big])

    def dead() -> int:
        entries = asyncio.run(read_dlq(kafka_bootstrap, DlqFilter(error_class="TooLargeError")))
        return len([e for e in entries if (e.record.doc_id or "").startswith("dlq-fix-")])

    wait_until(lambda: dead() >= 5, 60, "5 too-large dead letters")
    # The fix: a larger body limit. Restart the worker with it, then replay the too-large ones.
    assert worker.stop() == 0
    worker.env["TICKERWIRE_MAX_BODY_BYTES"] = "1000000"
    worker.start()
    for doc in big:
        cli = subprocess.run(
            [
                TICKERWIRE,
                "dlq",
                "replay",
                "--filter",
                "error_class=TooLargeError",
                "--filter",
                f"doc_id={doc['doc_id']}",
            ],
            env={**os.environ, "TICKERWIRE_KAFKA_BOOTSTRAP": kafka_bootstrap},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert "replayed 1 record(s)" in cli.stdout
    wait_indexed(worker, expected_chunk_ids(big, settings), timeout=120)
