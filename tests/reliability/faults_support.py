"""Shared by the fault suite: documents for a stream, and the id-by-id audit of the final index
that every fault test ends with, printed as one fixed-format ``RELIABILITY`` line."""

from __future__ import annotations

import random
from typing import Any

from tests.e2e.stream_support import dead_letters
from tests.e2e.support import Worker
from tests.e2e.test_pipeline_e2e import make_doc, paragraph

__all__ = ["audit", "stream"]


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
