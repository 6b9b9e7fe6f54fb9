"""The query HTTP API (FastAPI): search, health and Prometheus metrics; query/live.py adds the
page, events, status, documents and market movers."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tickerwire import __version__
from tickerwire.core.metrics import QUERY_REQUESTS
from tickerwire.core.ports import SearchFilters, Watermark
from tickerwire.core.settings import Settings
from tickerwire.query.search import SearchService, hit_to_json

if TYPE_CHECKING:
    from tickerwire.query.live import LiveDeps


class FiltersIn(BaseModel):
    """Search filters; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    tickers: list[Annotated[str, Field(min_length=1, max_length=12)]] = []
    doc_types: list[str] = []
    sources: list[str] = []
    published_after: AwareDatetime | None = None
    published_before: AwareDatetime | None = None
    as_of: AwareDatetime | None = None

    def to_filters(self) -> SearchFilters:
        return SearchFilters(
            tickers=tuple(t.upper() for t in self.tickers),
            doc_types=tuple(self.doc_types),
            sources=tuple(self.sources),
            published_after=self.published_after,
            published_before=self.published_before,
            as_of=self.as_of,
        )


class SearchIn(BaseModel):
    """``POST /v1/search`` body."""

    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, Field(min_length=1, max_length=2000)]
    k: Annotated[int, Field(ge=1, le=100)] = 10
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    filters: FiltersIn = FiltersIn()


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def watermark_json(w: Watermark) -> dict[str, str | None]:
    """The watermark as RFC 3339 strings (null when the index is empty)."""
    return {"published_at": _iso(w.published_ts), "indexed_at": _iso(w.indexed_ts)}


def create_app(
    *,
    settings: Settings,
    search: SearchService,
    ready: Callable[[], Awaitable[bool]] | None = None,
    live: LiveDeps | None = None,
) -> FastAPI:
    """The query API bound to one search service."""
    from tickerwire.query.live import live_router  # live imports this module's helpers

    app = FastAPI(title="tickerwire", version=__version__)
    keys = [k.get_secret_value().encode() for k in settings.api_keys]

    async def require_key(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> None:
        if not keys:
            return
        given = x_api_key
        if authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if given is None or not any(hmac.compare_digest(given.encode(), k) for k in keys):
            raise HTTPException(
                status_code=401,
                detail="missing or invalid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        QUERY_REQUESTS.labels(endpoint=request.url.path, status=str(response.status_code)).inc()
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        ok = await ready() if ready else True
        if not ok:
            response.status_code = 503
        return {"ready": ok}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/search", dependencies=[Depends(require_key)])
    async def v1_search(body: SearchIn) -> dict[str, Any]:
        result = await search.search(
            body.query, k=body.k, mode=body.mode, filters=body.filters.to_filters()
        )
        return {
            "hits": [hit_to_json(h) for h in result.hits],
            "watermark": watermark_json(result.watermark),
            "timings": result.timings,
        }

    app.include_router(live_router(search=search, require_key=require_key, deps=live))

    return app
