"""Running the real ``tickerwire up`` process in end-to-end tests, and talking to it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.kafka_support import run_async
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.index_factory import open_index
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings
from tickerwire.core.waiting import wait_for
from tickerwire.evaluation.worker import TICKERWIRE, WorkerProcess
from tickerwire.runtime import chunker_for
from tickerwire.stages.preprocess import ChunkerConfig, prepare

__all__ = [
    "TICKERWIRE",
    "Worker",
    "assert_exact_index",
    "expected_chunk_ids",
    "expected_for",
    "wait_until",
]


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    if not wait_for(check, timeout, interval):
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


def assert_exact_index(
    settings: Settings, final: Mapping[str, object | None], expected: Mapping[str, set[str]]
) -> None:
    """Open the index of ``settings`` (the worker stopped) and check it id by id: every live
    document of ``final`` has exactly its ``expected`` chunk ids, a deleted one (None) none, and
    nothing else is there."""
    all_expected = set().union(*expected.values()) if expected else set()

    async def audit() -> tuple[set[str], dict[str, set[str]]]:
        index = open_index(settings, 384)
        # the id audits are on the concrete classes, not on the VectorIndex port
        assert isinstance(index, EdgeIndex | ServerIndex)
        await index.ensure_collection(384)
        try:
            return await index.all_point_ids(), {
                d: await index.document_point_ids(d) for d in final
            }
        finally:
            await index.aclose()

    ids, per_doc = run_async(audit)
    assert ids == all_expected, (
        f"missing {len(all_expected - ids)}, unexpected {len(ids - all_expected)}"
    )
    for doc_id, doc in final.items():
        assert per_doc[doc_id] == (expected[doc_id] if doc is not None else set()), doc_id


def expected_for(settings: Settings, docs: Iterable[dict[str, Any] | None]) -> dict[str, set[str]]:
    """:func:`expected_chunk_ids` of the live ``docs`` (None: deleted) with the chunker of
    ``settings`` (its embedder's tokenizer and budget)."""
    embedder = open_embedder(settings)
    try:
        return expected_chunk_ids(
            [d for d in docs if d is not None], chunker_for(settings, embedder)
        )
    finally:
        run_async(embedder.aclose)
