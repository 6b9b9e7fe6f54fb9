"""Re-index on the server path (qdrant-client's local mode stands in for the server): the
collection name is an alias over ``<name>__g<N>``; ``tickerwire reindex`` builds the next
generation from the raw topic and re-points the alias in one request while searches run on the
alias. None fails, none sees an empty collection, and the old generation is kept for comparison
until ``--drop-old``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.e2e.support import expected_for
from tests.e2e.test_pipeline_e2e import produce
from tests.reliability.faults_support import stream
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.core.errors import ConfigError
from tickerwire.core.ports import IndexQuery
from tickerwire.core.settings import Settings
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.runtime.reindex import reindex

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 24


async def _search_loop(index: ServerIndex, settings: Settings, halt: asyncio.Event) -> list[int]:
    """Sparse searches through the alias until ``halt``; the hit count of each."""
    query = BM25Encoder().encode_query("Firm3 reported")
    counts: list[int] = []
    while not halt.is_set():
        hits = await index.search(
            IndexQuery("sparse", sparse=query, limit=5, hybrid=settings.hybrid_params())
        )
        counts.append(len(hits))
        await asyncio.sleep(0)
    return counts


async def _rebuild_under_search(
    live: ServerIndex, settings: Settings, drop_old: bool
) -> tuple[list[int], object]:
    halt = asyncio.Event()
    searching = asyncio.create_task(_search_loop(live, settings, halt))
    try:
        report = await reindex(settings, server_index=live, drop_old=drop_old)
    finally:
        halt.set()
    return await searching, report


def test_reindex_swaps_the_alias_while_searches_run(module_broker: str, tmp_path: Path) -> None:
    records, latest = stream("srv", DOCS, 6)
    produce(module_broker, records)
    name = f"tw_{uuid.uuid4().hex[:6]}"
    first = Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=module_broker,
        app_id=name,
        collection=name,
        qdrant_url="http://127.0.0.1:1",  # the server path; the index itself is passed in
        chunk_tokens=48,
    )
    second = first.model_copy(update={"chunk_tokens": 160})

    async def scenario() -> None:
        live = ServerIndex(name, location=":memory:")
        try:
            # The first rebuild fills a collection that starts empty behind the alias.
            report1 = await reindex(first, server_index=live)
            assert report1.old == f"{name}__g1" and report1.new == f"{name}__g2"
            assert await live.live_collection() == f"{name}__g2"
            assert await live.count() == sum(len(v) for v in expected_for(first, latest).values())

            counts, report2 = await _rebuild_under_search(live, second, drop_old=True)
            print(f"REINDEX server searches={len(counts)} report={report2}")
            assert counts and min(counts) > 0, "a search failed to see the collection"
            assert await live.live_collection() == f"{name}__g3"
            assert f"{name}__g2" not in await live.collections()  # --drop-old
            assert f"{name}__g1" in await live.collections()  # kept: not dropped that time
            want = expected_for(second, latest)
            assert {d: await live.document_point_ids(d) for d in want} == want
            assert await live.count() == sum(len(v) for v in want.values())
        finally:
            await live.aclose()

    asyncio.run(scenario())


def test_a_plain_collection_is_refused_before_any_work(module_broker: str, tmp_path: Path) -> None:
    name = f"plain_{uuid.uuid4().hex[:6]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap=module_broker,
        collection=name,
        qdrant_url="http://127.0.0.1:1",
    )

    async def scenario() -> None:
        live = ServerIndex(name, location=":memory:", aliased=False)
        await live.ensure_collection(384)
        aliased_view = live.sibling(name)
        aliased_view._aliased = True
        try:
            with pytest.raises(ConfigError, match="not an alias"):
                await reindex(settings, server_index=aliased_view)
        finally:
            await live.aclose()

    asyncio.run(scenario())
