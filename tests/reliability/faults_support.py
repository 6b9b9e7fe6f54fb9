"""Shared by the fault suite: documents for a stream, and the id-by-id audit of the final index
that every fault test ends with, printed as one fixed-format ``RELIABILITY`` line."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.stream_support import dead_letters, stage_lag, stage_lag_by_partition
from tests.e2e.support import Worker, expected_for, wait_until
from tests.e2e.test_pipeline_e2e import make_doc, paragraph, produce
from tests.kafka_support import free_port
from tickerwire.core.settings import Settings

#: The audit of an exact index.
EXACT = {"lost": 0, "duplicated": 0, "stale": 0, "dlq_transient": 0}

__all__ = ["EXACT", "Case", "audit", "local_case", "stream"]


def stream(
    prefix: str, docs: int, updates: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record in produce order (``docs`` new documents, then a second version of the first
    ``updates`` of them, one paragraph changed), and the latest version of each document."""
    rng = random.Random(prefix)
    new = [
        make_doc(f"{prefix}-{i:03d}", 1, [paragraph(rng, f"Firm{i} p{p}") for p in range(2)])
        for i in range(docs)
    ]
    changed = [
        make_doc(str(d["doc_id"]), 2, [paragraph(rng, f"Firm{i} v2"), *d["body"].split("\n\n")[1:]])
        for i, d in enumerate(new[:updates])
    ]
    latest = {str(d["doc_id"]): d for d in [*new, *changed]}
    return [*new, *changed], list(latest.values())


@dataclass
class Case:
    """One fault case: its documents, what the index must hold, and its (unstarted) worker."""

    prefix: str
    records: list[dict[str, Any]]
    expected: dict[str, set[str]]
    worker: Worker
    bootstrap: str

    def start(self, records: list[dict[str, Any]]) -> None:
        """Start the worker, produce ``records``, and wait until the first is indexed."""
        self.worker.start()
        produce(self.bootstrap, records)
        wait_until(
            lambda: self.worker.document_ids(str(records[0]["doc_id"])) is not None,
            120,
            "the worker to index the first documents",
        )

    def settle(self) -> None:
        """Wait until the index holds exactly the expected ids and every stage has committed
        every record (nothing still arriving could change it)."""
        wait_until(
            lambda: all(self.worker.document_ids(d) == ids for d, ids in self.expected.items()),
            240,
            f"{len(self.expected)} documents indexed exactly",
        )
        try:
            wait_until(lambda: stage_lag(self.bootstrap, self.prefix) == 0, 120, "no consumer lag")
        except AssertionError as exc:
            lag = stage_lag_by_partition(self.bootstrap, self.prefix)
            raise AssertionError(f"{exc}: {lag}\n{self.worker.log_tail()}") from exc

    def audit(self, fault: str, injected: str) -> dict[str, int]:
        """:func:`audit` of this case's index."""
        return audit(fault, injected, self.worker, self.bootstrap, self.prefix, self.expected)


def local_case(kind: str, bootstrap: str, tmp_path: Path, docs: int, updates: int) -> Case:
    """A stream of ``docs`` documents and ``updates`` updates, for a worker on the local
    embedder with its own consumer group and index under ``tmp_path``."""
    prefix = f"{kind}-{uuid.uuid4().hex[:6]}"
    records, latest = stream(prefix, docs, updates)
    cfg = Settings(data_dir=tmp_path / "data")
    worker = Worker(
        bootstrap=bootstrap,
        data_dir=cfg.data_dir,
        app_id=prefix,
        http_port=free_port(),
        env={"TICKERWIRE_LOG_LEVEL": "info"},  # a failure message carries the log's tail
    )
    return Case(prefix, records, expected_for(cfg, latest), worker, bootstrap)


def audit(
    fault: str,
    injected: str,
    worker: Worker,
    broker: str,
    prefix: str,
    expected: dict[str, set[str]],
) -> dict[str, int]:
    """Compare the index with ``expected`` id by id (the worker's own broker and index hold only
    this stream); print the RELIABILITY line and return its counts.

    lost: expected chunk ids missing; stale: chunk ids indexed for a document that its latest
    version does not have; duplicated: points beyond the distinct chunk ids of the documents;
    dlq_transient: dead letters about the stream (none is expected: every fault is transient).
    """
    got = {doc_id: worker.document_ids(doc_id) or set() for doc_id in expected}
    points = int(worker.client.get("/v1/status").json()["points"])
    counts = {
        "lost": sum(len(expected[d] - got[d]) for d in expected),
        "duplicated": points - sum(len(ids) for ids in got.values()),
        "stale": sum(len(got[d] - expected[d]) for d in expected),
        "dlq_transient": len(dead_letters(broker, prefix)),
    }
    print(
        f"RELIABILITY fault={fault} injected={injected} docs={len(expected)} "
        + " ".join(f"{k}={v}" for k, v in counts.items())
    )
    return counts
