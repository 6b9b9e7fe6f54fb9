"""Re-index on the embedded default (Qdrant Edge): ``tickerwire reindex`` rebuilds the index from
the raw topic with new chunking while the all-in-one worker keeps serving and ingesting, and the
worker swaps it in. Searches run the whole time: none fails, and none sees an empty index.

The operator's order for a chunking change (docs/retrieval.md, "Re-index"): restart the worker
with the new settings, then run reindex. The worker then writes new-style chunks for what it
ingests, and the rebuild re-chunks the documents it already had.
"""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import expected_for, wait_until
from tests.e2e.test_pipeline_e2e import make_doc, paragraph, produce
from tests.reliability.faults_support import EXACT, local_case
from tickerwire.adapters.edge_handover import staging_root
from tickerwire.adapters.edge_layout import current_shard
from tickerwire.core.settings import Settings
from tickerwire.runtime.reindex import reindex

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 30
OLD_TOKENS, NEW_TOKENS = "48", "160"


class Searches(threading.Thread):
    """Searches the worker's API in a loop; records every status and hit count."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        self.results: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                resp = self.client.post("/v1/search", json={"query": "Firm3 reported", "k": 5})
                hits = len(resp.json().get("hits", [])) if resp.status_code == 200 else -1
                self.results.append((resp.status_code, hits))
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)
        self.client.close()


def test_reindex_swaps_the_live_edge_shard_while_searches_and_ingest_run(
    module_broker: str, tmp_path: Path
) -> None:
    case = local_case("reindex", module_broker, tmp_path, DOCS, 0)
    worker = case.worker
    data_dir = tmp_path / "data"
    old = Settings(data_dir=data_dir, chunk_tokens=int(OLD_TOKENS))
    new = Settings(
        data_dir=data_dir,
        chunk_tokens=int(NEW_TOKENS),
        kafka_bootstrap=module_broker,
        app_id=case.prefix,
    )
    docs = case.records
    worker.env["TICKERWIRE_CHUNK_TOKENS"] = OLD_TOKENS
    worker.env["TICKERWIRE_LOG_LEVEL"] = "info"  # the swap's log line is checked
    searches = Searches(worker.http_port)
    try:
        case.start(docs)
        before = expected_for(old, docs)
        wait_until(
            lambda: all(worker.document_ids(d) == ids for d, ids in before.items()),
            240,
            "the first index, chunked at 48 tokens",
        )
        # New chunking: the worker first, then the rebuild of what it already indexed.
        assert worker.stop() == 0
        worker.env["TICKERWIRE_CHUNK_TOKENS"] = NEW_TOKENS
        worker.start()
        live_before = current_shard(data_dir / "qdrant-edge")
        searches.start()
        rng = random.Random(7)
        updates = [
            make_doc(str(d["doc_id"]), 2, [paragraph(rng, f"Firm{i} v2"), paragraph(rng, "x")])
            for i, d in enumerate(docs[:8])
        ]
        progress: list[int] = []

        def on_progress(done: int, total: int) -> None:
            progress.append(done)
            if len(progress) == 1:  # live writes while the rebuild runs
                threading.Thread(target=produce, args=(module_broker, updates[:4])).start()

        report = asyncio.run(reindex(new, progress=on_progress))
        produce(module_broker, updates[4:])  # after the swap: into the new shard
        latest: dict[str, Any] = {str(d["doc_id"]): d for d in [*docs, *updates]}
        case.expected = expected_for(new, latest.values())
        case.settle()
        searches.stop()

        assert report.swapped and report.backend == "edge"
        assert report.records >= DOCS
        live_after = current_shard(data_dir / "qdrant-edge")
        assert live_after is not None and live_after != live_before
        assert not staging_root(data_dir / "qdrant-edge").exists()
        assert "edge_handover_swapped" in worker.log_path.read_text(errors="replace")
        assert not searches.errors, searches.errors[:3]
        assert searches.results, "no search ran"
        assert all(status == 200 for status, _ in searches.results), searches.results[:5]
        assert min(hits for _, hits in searches.results) > 0, "a search saw an empty index"
        print(f"REINDEX searches={len(searches.results)} report={report}")
        counts = case.audit("reindex_edge_swap", "rebuild_and_swap_during_search_and_ingest")
        assert counts == EXACT
        assert worker.stop() == 0
    finally:
        searches.halt.set()
        worker.close()
