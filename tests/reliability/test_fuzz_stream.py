"""Fuzzed bytes straight into the raw topic while valid documents stream, through a real broker
and the real worker: the stream stays alive, every bad record lands in the DLQ with a reason,
and every valid document is indexed, id by id."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest

from tests.e2e.stream_support import dead_letters
from tests.e2e.support import Worker, expected_for, wait_until
from tests.e2e.test_pipeline_e2e import make_doc, paragraph, produce, produce_raw
from tests.kafka_support import free_port
from tickerwire.core.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

CHUNK_TOKENS = 64
VALID = 24
BAD = 40


@pytest.fixture(scope="module")
def broker(module_broker: str) -> str:
    return module_broker


def garbage(rng: random.Random, good: dict[str, object]) -> bytes:
    """One bad raw record: noise, broken JSON, or a document with one field wrong."""
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if kind == 1:
        return json.dumps(good).encode()[: rng.randrange(1, 80)]  # truncated
    if kind == 2:
        return b"\xff\xfe" + json.dumps(good).encode()  # not UTF-8
    if kind == 3:
        return json.dumps(rng.choice([[], 7, "doc", None, {"a": [1, 2]}])).encode()
    if kind == 4:
        field = rng.choice(["version", "published_at", "tickers", "op", "content_type", "schema"])
        bad = rng.choice([-1, "yesterday", {"x": 1}, [None], "", 3.5])
        return json.dumps({**good, field: bad}).encode()
    if kind == 5:
        return json.dumps({k: v for k, v in good.items() if k != rng.choice(list(good))}).encode()
    return b"[" * 5000 + b"]" * 5000  # deep nesting


def test_fuzzed_raw_records_are_dead_lettered_and_the_stream_goes_on(
    broker: str, tmp_path: Path
) -> None:
    rng = random.Random(1313)
    prefix = f"fuzz-{uuid.uuid4().hex[:6]}"
    docs = [
        make_doc(f"{prefix}-ok-{i:02d}", 1, [paragraph(rng, f"Firm{i} p{p}") for p in range(2)])
        for i in range(VALID)
    ]
    bad = [(f"{prefix}-bad-{i:02d}".encode(), garbage(rng, docs[i % VALID])) for i in range(BAD)]
    cfg = Settings(chunk_tokens=CHUNK_TOKENS, chunk_overlap=0, data_dir=tmp_path / "data")
    expected = expected_for(cfg, docs)

    worker = Worker(
        bootstrap=broker,
        data_dir=cfg.data_dir,
        app_id=f"fuzz-{uuid.uuid4().hex[:6]}",
        http_port=free_port(),
        env={"TICKERWIRE_CHUNK_TOKENS": str(CHUNK_TOKENS), "TICKERWIRE_CHUNK_OVERLAP": "0"},
    )
    worker.start()
    try:
        for k in range(0, VALID, 6):  # valid documents and garbage, interleaved
            produce(broker, docs[k : k + 6])
            produce_raw(broker, bad[k * BAD // VALID : (k + 6) * BAD // VALID])
        wait_until(
            lambda: all(worker.document_ids(d) is not None for d in expected), 180, "every doc"
        )
        wait_until(lambda: len(dead_letters(broker, prefix)) >= BAD, 60, f"{BAD} dead letters")
        letters = dead_letters(broker, prefix)
        assert sorted(d.doc_id or "" for d in letters) == sorted(k.decode() for k, _ in bad)
        assert all(d.reason and d.stage == "preprocess" for d in letters)
        assert all(d.error_class for d in letters)
        for doc_id, ids in expected.items():  # id by id: nothing lost, nothing extra
            assert worker.document_ids(doc_id) == ids, doc_id
        assert worker.proc is not None and worker.proc.poll() is None  # still alive
        print(
            f"RELIABILITY fault=fuzzed-raw-records injected={BAD} bad records among {VALID} docs "
            f"docs={VALID} lost=0 duplicated=0 stale=0 dlq={len(letters)}"
        )
    finally:
        worker.close()
