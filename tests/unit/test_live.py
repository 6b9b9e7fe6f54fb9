"""The live routes (status, documents, movers, events, page) over a small in-memory index."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from tests.stage_support import chunk_record
from tests.unit.test_stages import PARAS, DictIndex, Pipeline, doc

from tickerwire.core.ports import ScoredHit, SearchFilters, Watermark
from tickerwire.core.records import CommitRecord, SparseValues, VectorRecord
from tickerwire.core.settings import Settings
from tickerwire.query.api import create_app
from tickerwire.query.events import (
    EventBroadcaster,
    IndexEvent,
    events_for_batch,
    index_publisher,
)
from tickerwire.query.live import LiveDeps, _event_stream, live_router
from tickerwire.query.search import SearchService
from tickerwire.stages.index import IndexStage


class FakeIndex:
    """Just the index calls the live routes make, over a list of payloads."""

    backend = "fake"

    def __init__(self, payloads: list[dict[str, Any]]) -> None:
        self.payloads = payloads
        self.top_by_calls: list[dict[str, Any]] = []

    async def count(self, filters: SearchFilters | None = None) -> int:
        return len(self.payloads)

    async def count_documents(self) -> int:
        return len({p["doc_id"] for p in self.payloads})

    async def watermark(self) -> Watermark:
        return Watermark(published_ts=1.0e9, indexed_ts=1.7e9)

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        hits = [ScoredHit(str(i), 0.0, p) for i, p in enumerate(self.payloads)]
        return sorted(
            (h for h in hits if h.payload["doc_id"] == doc_id),
            key=lambda h: int(h.payload["chunk_index"]),
        )

    async def top_by(self, **query: Any) -> list[ScoredHit]:
        self.top_by_calls.append(query)
        field, direction, filters, limit = (
            query[k] for k in ("field", "direction", "filters", "limit")
        )
        rows = [p for p in self.payloads if isinstance(p.get(field), float)]
        if filters.tickers:
            rows = [p for p in rows if set(p["tickers"]) & set(filters.tickers)]
        rows.sort(key=lambda p: float(p[field]), reverse=direction == "desc")
        return [ScoredHit(p["chunk_id"], float(p[field]), p) for p in rows[:limit]]


@dataclass(frozen=True)
class Lag:
    stage: str
    records: int | None


class FakeLag:
    async def read(self) -> Sequence[Lag]:
        return [Lag("preprocess", 0), Lag("embed", 3), Lag("index", None)]


def _stats(doc_id: str, ticker: str, pct: float, chunk_index: int = 0) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "chunk_id": f"{doc_id}-{chunk_index}",
        "chunk_index": chunk_index,
        "title": f"{ticker} close",
        "url": None,
        "tickers": [ticker],
        "doc_type": "market_stats",
        "published_at": "2026-12-04T21:00:00+00:00",
        "price": 100.0,
        "change": pct,
        "change_pct": pct,
        "volume": 1e6,
    }


PAYLOADS = [
    _stats("m-nvda", "NVDA", -4.5),
    _stats("m-nvda", "NVDA", -4.5, chunk_index=1),
    _stats("m-tsla", "TSLA", 2.0),
    _stats("m-xom", "XOM", -1.0),
    {"doc_id": "news-1", "chunk_id": "n1", "chunk_index": 0, "title": "News", "text": "<b>x</b>"},
]


def _client(index: FakeIndex, *, keys: str = "", deps: LiveDeps | None = None) -> TestClient:
    settings = Settings(api_keys=keys)  # parsed from "k1,k2" by the validator
    search = SearchService(embedder=None, sparse=None, index=index)  # type: ignore[arg-type]
    app = create_app(
        settings=settings, search=search, routers=[live_router(search=search, deps=deps)]
    )
    return TestClient(app)


def test_status_reports_documents_points_and_lag() -> None:
    body = _client(FakeIndex(PAYLOADS), deps=LiveDeps(lag=FakeLag())).get("/v1/status").json()
    assert body["points"] == 5
    assert body["documents"] == 4
    assert body["lag"] == {"preprocess": 0, "embed": 3, "index": None}
    assert body["watermark"]["published_at"].startswith("2001-09-09")


def test_document_route_moved_as_is() -> None:
    client = _client(FakeIndex(PAYLOADS))
    body = client.get("/v1/documents/m-nvda").json()
    assert [c["chunk_index"] for c in body["chunks"]] == [0, 1]
    assert client.get("/v1/documents/nope").status_code == 404


def test_movers_down_orders_ascending_and_lists_each_document_once() -> None:
    index = FakeIndex(PAYLOADS)
    body = _client(index).get("/v1/market/movers?metric=change_pct&direction=down&limit=2").json()
    assert [m["doc_id"] for m in body["movers"]] == ["m-nvda", "m-xom"]
    assert body["movers"][0]["change_pct"] == -4.5
    assert body["movers"][0]["value"] == -4.5
    call = index.top_by_calls[0]
    assert call["direction"] == "asc"
    assert call["field"] == "change_pct"
    assert call["filters"].doc_types == ("market_stats",)


def test_movers_up_with_tickers_and_window() -> None:
    index = FakeIndex(PAYLOADS)
    url = (
        "/v1/market/movers?metric=change&direction=up&tickers=tsla,xom"
        "&since=2026-12-01T00:00:00Z&until=2026-12-05T00:00:00Z"
    )
    body = _client(index).get(url).json()
    assert [m["doc_id"] for m in body["movers"]] == ["m-tsla", "m-xom"]
    flt = index.top_by_calls[0]["filters"]
    assert flt.tickers == ("TSLA", "XOM")
    assert flt.published_after == datetime(2026, 12, 1, tzinfo=UTC)
    assert flt.published_before == datetime(2026, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "query",
    [
        "metric=text",
        "metric=change_pct&direction=sideways",
        "limit=0",
        "limit=101",
        "since=yesterday",
        "since=2026-12-05T00:00:00Z&until=2026-12-01T00:00:00Z",
        "since=2026-12-05T00:00:00",  # no timezone
    ],
)
def test_movers_bad_input_is_422(query: str) -> None:
    response = _client(FakeIndex(PAYLOADS)).get(f"/v1/market/movers?{query}")
    assert response.status_code == 422, response.text


def test_live_routes_need_a_key_but_the_page_does_not() -> None:
    client = _client(FakeIndex(PAYLOADS), keys="k1", deps=LiveDeps(events=EventBroadcaster()))
    for path in ("/v1/status", "/v1/documents/m-nvda", "/v1/market/movers", "/v1/events"):
        assert client.get(path).status_code == 401, path
    assert client.get("/v1/status", headers={"X-API-Key": "k1"}).status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../live.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_events_route_without_a_publisher_is_503() -> None:
    response = _client(FakeIndex(PAYLOADS)).get("/v1/events")
    assert response.status_code == 503
    assert "no index events" in response.json()["detail"]


def _vector(doc_id: str) -> VectorRecord:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    chunk = chunk_record(
        doc_id,
        "t",
        token_count=1,
        title="NVIDIA 10-Q",
        source="sec",
        doc_type="filing",
        tickers=("NVDA",),
        published_at=now,
        produced_at=now,
    )
    sparse = SparseValues(indices=(1,), values=(1.0,))
    return VectorRecord.from_chunk(chunk, dense=(0.1,), sparse=sparse, model="m")


def _commit(doc_id: str, chunk_ids: tuple[Any, ...], op: str = "upsert") -> CommitRecord:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    return CommitRecord(
        doc_id=doc_id,
        version=1,
        op=op,
        chunk_ids=chunk_ids,
        content_hash=None,
        produced_at=now,
        published_at=now,
    )


def test_events_for_batch_one_per_commit_in_order() -> None:
    vec = _vector("d1")
    records: list[VectorRecord | CommitRecord] = [
        vec,
        _commit("d1", (vec.chunk_id,)),
        _commit("d2", (), op="delete"),
        _commit("d3", (uuid4(), uuid4())),
    ]
    events = events_for_batch(records, known={"d3": {"title": "Known", "tickers": ["XOM"]}})
    assert [e.kind for e in events] == ["indexed", "deleted", "indexed"]
    assert events[0].data["title"] == "NVIDIA 10-Q"
    assert events[0].data["tickers"] == ["NVDA"]
    assert events[0].data["chunks"] == 1
    assert set(events[1].data) == {"doc_id", "indexed_at"}
    assert events[2].data["title"] == "Known"
    assert events[2].data["chunks"] == 2
    assert set(events[0].data) == {
        "doc_id",
        "title",
        "doc_type",
        "tickers",
        "published_at",
        "indexed_at",
        "chunks",
    }


async def test_slow_subscriber_drops_and_counts_without_blocking_others() -> None:
    hub = EventBroadcaster(queue_size=2)
    with hub.subscribe() as slow, hub.subscribe() as fast:
        for i in range(5):
            hub.publish(IndexEvent("deleted", {"doc_id": str(i)}))
            got = await fast.next(0.1)
            assert got is not None
            assert got.data["doc_id"] == str(i)
        assert slow.dropped == 3
        assert slow.queue.qsize() == 2
        assert hub.subscribers == 2
    assert hub.subscribers == 0


async def test_event_stream_sends_events_heartbeats_and_ends_on_close() -> None:
    hub = EventBroadcaster()
    deps = LiveDeps(events=hub, heartbeat_s=0.05)
    stream = _event_stream(deps, hub)
    first = await anext(stream)
    assert first.startswith("retry: 3000\n")
    assert hub.subscribers == 1
    hub.publish(IndexEvent("indexed", {"doc_id": "d<1>"}))
    msg = await anext(stream)
    assert msg.startswith("event: indexed\ndata: ")
    assert json.loads(msg.split("data: ", 1)[1]) == {"doc_id": "d<1>"}
    assert await anext(stream) == ": heartbeat\n\n"
    deps.closing.set()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 2.0)
    assert hub.subscribers == 0


class DocIndex(DictIndex):
    """The stage tests' in-memory index, plus the lookup the event publisher makes."""

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        pts = [p for p in self.points.values() if p.payload["doc_id"] == doc_id]
        pts.sort(key=lambda p: int(p.payload["chunk_index"]))
        return [ScoredHit(p.id, 0.0, p.payload) for p in pts]


async def test_the_index_stage_publishes_after_its_writes_are_durable() -> None:
    p = Pipeline()
    p.index = DocIndex()
    hub = EventBroadcaster()
    publish = index_publisher(hub, p.index)  # type: ignore[arg-type]
    seen_points: list[int] = []

    async def on_applied(records: Sequence[VectorRecord | CommitRecord]) -> None:
        seen_points.append(len(p.index.points))  # what the index held when the event went out
        await publish(records)

    p.idx = IndexStage(index=p.index, sender=p.sender, on_applied=on_applied)  # type: ignore[arg-type]
    with hub.subscribe() as sub:
        await p.run(doc("d1", 1, PARAS))
        first = await sub.next(0.1)
        assert first is not None
        assert first.kind == "indexed"
        assert first.data["doc_id"] == "d1"
        assert first.data["title"] == "Title d1"
        assert first.data["tickers"] == ["ACME"]
        assert first.data["chunks"] == len(p.index.points) == seen_points[0]

        await p.run(doc("d1", 2, [*PARAS[:3], "A new last paragraph " + "z " * 10]))
        second = await sub.next(0.1)
        assert second is not None
        assert second.kind == "indexed"
        assert second.data["title"] == "Title d1"

        await p.run({**doc("d1", 3, []), "op": "delete"})
        third = await sub.next(0.1)
        assert third is not None
        assert third.kind == "deleted"
        assert p.index.points == {}
        assert await sub.next(0.05) is None


async def test_a_failing_event_hook_never_stops_indexing() -> None:
    p = Pipeline()

    async def broken(records: Sequence[VectorRecord | CommitRecord]) -> None:
        raise RuntimeError("subscriber bookkeeping broke")

    p.idx = IndexStage(index=p.index, sender=p.sender, on_applied=broken)  # type: ignore[arg-type]
    await p.run(doc("d1", 1, PARAS))
    assert p.index.doc_texts("d1")
    assert p.dlq == []
