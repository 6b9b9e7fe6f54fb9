"""The live side of the query API: the web page, index events, status, documents, top movers.

:func:`page_router` (the page and its files, open) and :func:`live_router` (the API routes, behind
the key check and rate limit when ``create_app`` includes it). The page asks for a key once and
sends it as a header; the event stream is read with ``fetch`` for that reason, not
``EventSource``, so a key never appears in a URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import structlog
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import AwareDatetime

from tickerwire import __version__
from tickerwire.core.errors import TickerwireError
from tickerwire.core.ports import ScoredHit, SearchFilters
from tickerwire.query.events import EventBroadcaster
from tickerwire.query.search import SearchService, hit_to_json
from tickerwire.query.views import error_responses, watermark_json

log = structlog.get_logger("tickerwire.query.live")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The page's files; nothing else under static/ is served.
STATIC_FILES: dict[str, str] = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "index.html": "text/html",
}

#: Numeric payload fields of ``market_stats`` documents that movers can be ranked by.
MoverMetric = Literal["change_pct", "change", "price", "volume"]
#: ``down`` lists the biggest fallers first (ascending), ``up`` the biggest risers (descending).
MoverDirection = Literal["up", "down"]

HEARTBEAT_S = 15.0


class StageLagView(Protocol):
    """A stage's consumer lag as /v1/status reports it (None: its group committed nothing)."""

    @property
    def stage(self) -> str: ...

    @property
    def records(self) -> int | None: ...


class LagSource(Protocol):
    """Where per-stage consumer lag comes from (the Kafka adapter, or a fake in tests)."""

    async def read(self) -> Sequence[StageLagView]: ...


@runtime_checkable
class CountsDocuments(Protocol):
    """An index that can count its distinct documents."""

    async def count_documents(self) -> int: ...


@dataclass
class LiveDeps:
    """What the live routes need beyond the search service; all optional."""

    events: EventBroadcaster | None = None
    lag: LagSource | None = None
    heartbeat_s: float = HEARTBEAT_S
    #: set on shutdown so open event streams end and the server can stop.
    closing: asyncio.Event = field(default_factory=asyncio.Event)


def mover_json(hit: ScoredHit) -> dict[str, Any]:
    """A market_stats document with its numbers, as the movers panel shows it."""
    p = hit.payload
    return {
        "doc_id": p.get("doc_id"),
        "title": p.get("title"),
        "url": p.get("url"),
        "tickers": p.get("tickers") or [],
        "published_at": p.get("published_at"),
        "price": p.get("price"),
        "change": p.get("change"),
        "change_pct": p.get("change_pct"),
        "volume": p.get("volume"),
        "value": hit.score,
    }


def _tickers(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    out = tuple(t.strip().upper() for t in raw.split(",") if t.strip())
    bad = [t for t in out if len(t) > 12]
    if bad:
        raise HTTPException(status_code=422, detail=f"tickers too long: {', '.join(bad)}")
    return out


async def _event_stream(deps: LiveDeps, events: EventBroadcaster) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    with events.subscribe() as sub:
        # retry: how long a client waits before reconnecting; the comment opens the stream at
        # once, so a client knows it is subscribed before any document arrives.
        yield "retry: 3000\n: subscribed\n\n"
        quiet_since = loop.time()
        while not deps.closing.is_set():
            # Short waits, so a shutdown ends the stream within a second.
            event = await sub.next(min(1.0, deps.heartbeat_s))
            if event is not None:
                yield event.sse()
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= deps.heartbeat_s:
                yield ": heartbeat\n\n"
                quiet_since = loop.time()


def page_router() -> APIRouter:
    """The page at ``/`` and its files: open, so a browser can load it before it has a key."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        media = STATIC_FILES.get(name)
        if media is None:
            raise HTTPException(status_code=404, detail="no such file")
        return FileResponse(STATIC_DIR / name, media_type=media)

    return router


def live_router(*, search: SearchService, deps: LiveDeps | None = None) -> APIRouter:
    """/v1/events, /v1/status, /v1/documents/{id} and /v1/market/movers.

    ``create_app(routers=[...])`` includes it behind the API-key check and the rate limit.
    """
    live = deps or LiveDeps()
    router = APIRouter()

    @router.get("/v1/events", responses=error_responses("503"))
    async def v1_events() -> StreamingResponse:
        if live.events is None:
            raise HTTPException(status_code=503, detail="this process publishes no index events")
        return StreamingResponse(
            _event_stream(live, live.events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/v1/status")
    async def v1_status() -> dict[str, Any]:
        index = search.index
        documents = await index.count_documents() if isinstance(index, CountsDocuments) else None
        lag: dict[str, int | None] = {}
        lag_error: str | None = None
        if live.lag is not None:
            try:
                lag = {s.stage: s.records for s in await live.lag.read()}
            except TickerwireError as exc:
                lag_error = str(exc)
        out: dict[str, Any] = {
            "version": __version__,
            "backend": index.backend,
            "points": await index.count(),
            "documents": documents,
            "watermark": watermark_json(await index.watermark()),
            "lag": lag,
        }
        if lag_error is not None:
            out["lag_error"] = lag_error
        return out

    @router.get("/v1/documents/{doc_id:path}", responses=error_responses("404"))
    async def v1_document(doc_id: str) -> dict[str, Any]:
        hits = await search.index.get_document(doc_id)
        if not hits:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r} in the index")
        first = hits[0].payload
        return {
            "doc_id": doc_id,
            "title": first.get("title"),
            "url": first.get("url"),
            "source": first.get("source"),
            "doc_type": first.get("doc_type"),
            "tickers": first.get("tickers"),
            "published_at": first.get("published_at"),
            "version": max(int(h.payload.get("version", 0)) for h in hits),
            "chunks": [hit_to_json(h) for h in hits],
        }

    @router.get("/v1/market/movers")
    async def v1_movers(
        metric: MoverMetric = "change_pct",
        direction: MoverDirection = "down",
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        as_of: AwareDatetime | None = None,
        tickers: Annotated[str | None, Query(max_length=2000)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        index = search.index
        if since is not None and until is not None and since >= until:
            raise HTTPException(status_code=422, detail="since must be before until")
        filters = SearchFilters(
            tickers=_tickers(tickers),
            doc_types=("market_stats",),
            published_after=since,
            published_before=until,
            as_of=as_of,
        )
        # Every chunk of a document carries its numbers; a document is listed once, so ask for
        # a few more points than documents (market_stats documents are one chunk in practice).
        hits = await index.top_by(
            field=metric,
            direction="asc" if direction == "down" else "desc",
            filters=filters,
            limit=min(limit * 4, 400),
        )
        seen: set[str] = set()
        movers: list[dict[str, Any]] = []
        for hit in hits:
            doc_id = str(hit.payload.get("doc_id"))
            if doc_id in seen:
                continue
            seen.add(doc_id)
            movers.append(mover_json(hit))
            if len(movers) == limit:
                break
        return {
            "metric": metric,
            "direction": direction,
            "movers": movers,
            "watermark": watermark_json(await index.watermark()),
        }

    return router
