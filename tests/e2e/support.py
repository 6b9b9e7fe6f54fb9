"""Running the real ``tickerwire up`` process in end-to-end tests, and talking to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from tickerwire.core.records import RawDocument
from tickerwire.evaluation.worker import TICKERWIRE, WorkerProcess
from tickerwire.stages.preprocess import ChunkerConfig, prepare

__all__ = ["TICKERWIRE", "Worker", "expected_chunk_ids", "wait_until"]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Worker(WorkerProcess):
    """One ``tickerwire up`` process (the package's supervisor), plus what the tests read from it.

    Logs go to ``<data_dir>/worker-<n>.log``, one per start.
    """

    def start(self, timeout: float = 120.0) -> None:
        """Start and wait for ``/readyz``; the tests allow 120 s, not the package's 180."""
        super().start(timeout)

    def document_ids(self, doc_id: str) -> set[str] | None:
        resp = self.client.get(f"/v1/documents/{doc_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return {c["chunk_id"] for c in resp.json()["chunks"]}

    def search(self, query: str, **body: Any) -> dict[str, Any]:
        resp = self.client.post("/v1/search", json={"query": query, **body})
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


def expected_chunk_ids(
    docs: Iterable[dict[str, Any]], chunker: ChunkerConfig
) -> dict[str, set[str]]:
    """The chunk ids the pipeline must index for each upserted document (same code path)."""
    out: dict[str, set[str]] = {}
    for d in docs:
        prepared = prepare(RawDocument.model_validate(d), chunker)
        out[d["doc_id"]] = {c.chunk_id for c in prepared.chunks}
    return out
