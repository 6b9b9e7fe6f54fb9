"""The query HTTP API (FastAPI): search, ask, health and Prometheus metrics (query/live.py adds
the page, events, status, documents and market movers).

Everything but ``/healthz``, ``/readyz`` and ``/metrics`` sits behind the API-key check and the
per-key rate limit when keys are configured: routes of :func:`create_app` and of every router it
is given get both as router-level dependencies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from limits import parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.routing import Match

from tickerwire import __version__
from tickerwire.core.errors import AnswerModelError, ValidationError
from tickerwire.core.metrics import (
    QUERY_RATE_LIMITED,
    QUERY_REQUEST_SECONDS,
    QUERY_REQUESTS,
    QUERY_TOP_SCORE,
)
from tickerwire.core.ports import SearchFilters
from tickerwire.core.settings import Settings
from tickerwire.query.ask import AskEvent, AskService, final_response
from tickerwire.query.learning import LoggedRequest, QueryRecorder
from tickerwire.query.live import page_router
from tickerwire.query.search import SearchService, hit_to_json
from tickerwire.query.views import error_responses
from tickerwire.query.views import watermark_json as watermark_json  # cli/run.py imports it here

#: Paths that stay open when API keys are configured (the page and its files hold no data; the
#: page asks for a key before it calls the API).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/", "/static/{name}"})
#: Most chunks one /v1/ask reads and cites.
MAX_ASK_K = 20

_Str = Annotated[str, Field(min_length=1, max_length=100)]


class FiltersIn(BaseModel):
    """Search filters; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    tickers: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=12)]], Field(max_length=50)
    ] = []
    doc_types: Annotated[list[_Str], Field(max_length=20)] = []
    sources: Annotated[list[_Str], Field(max_length=50)] = []
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
    #: Query understanding (companies, tickers, periods named in the query); false turns it off.
    understand: bool = True


class FeedbackIn(BaseModel):
    """``POST /v1/feedback`` body: a rating of one answer (its ``query_id``)."""

    model_config = ConfigDict(extra="forbid")

    query_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    rating: Literal[1, -1]
    comment: Annotated[str, Field(max_length=4000)] | None = None
    corrected_answer: Annotated[str, Field(max_length=20_000)] | None = None
    #: Citation numbers (``n``) of the answer that are wrong.
    wrong_citations: Annotated[
        list[Annotated[int, Field(ge=1, le=100)]], Field(max_length=100)
    ] = []


class AskIn(BaseModel):
    """``POST /v1/ask`` body."""

    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
    k: Annotated[int, Field(ge=1, le=MAX_ASK_K)] = 5
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    filters: FiltersIn = FiltersIn()
    understand: bool = True


def sse(event: str, data: Any) -> bytes:
    """One server-sent event (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def iter_routes(routes: Sequence[Any]) -> Iterator[Any]:
    """Every route of an app, with included routers flattened (their ``path`` has the prefix).

    FastAPI >= 0.16x keeps an included router as one ``_IncludedRouter`` entry of
    ``app.routes``; its ``effective_route_contexts()`` yields the routes as they are served.
    """
    for route in routes:
        effective = getattr(route, "effective_route_contexts", None)
        if effective is not None:
            yield from effective()
        else:
            yield route


def route_template(request: Request) -> str:
    """The path template of the route that served ``request`` (bounded metric labels)."""
    for candidate in iter_routes(request.app.router.routes):
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


#: What every route behind the key check may answer besides its own result.
GUARDED_ERRORS = error_responses("401", "413", "422", "429")


class Guard:
    """The API-key check and the per-key rate limit, as FastAPI dependencies.

    Keys are compared in constant time and never logged; the limiter is keyed by a hash of the
    key. An open API (no keys configured) is not rate limited.
    """

    def __init__(self, settings: Settings, hash_key: Callable[[str], str] | None = None) -> None:
        """``hash_key``: the query log's keyed hash; the caller's is put on
        ``request.state.key_hash`` (None for an open API)."""
        self._hash_key = hash_key
        self._keys = [k.get_secret_value().encode() for k in settings.api_keys]
        self._limits = parse_many(settings.api_rate_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(
        self,
        request: Request,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> None:
        identity = await self._authenticate(authorization, x_api_key)
        request.state.key_hash = None
        if identity is not None and self._hash_key is not None:
            request.state.key_hash = self._hash_key(_given_key(authorization, x_api_key) or "")
        if identity is None:
            return  # an open API (no keys configured) is a local one: no one to limit
        for limit in self._limits:
            if not await self._limiter.hit(limit, identity):
                stats = await self._limiter.get_window_stats(limit, identity)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                QUERY_RATE_LIMITED.inc()
                raise HTTPException(
                    status_code=429,
                    detail=f"rate limit of {limit} exceeded; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )

    async def _authenticate(self, authorization: str | None, x_api_key: str | None) -> str | None:
        """A stable, non-secret id of the caller's key; None when the API is open."""
        if not self._keys:
            return None
        given = _given_key(authorization, x_api_key)
        if given is None or not any(hmac.compare_digest(given.encode(), k) for k in self._keys):
            raise HTTPException(
                status_code=401,
                detail="missing or invalid API key (send 'Authorization: Bearer KEY' or "
                "'X-API-Key: KEY')",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return "key:" + hashlib.sha256(given.encode()).hexdigest()[:16]


def _given_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


def create_app(
    *,
    settings: Settings,
    search: SearchService,
    ask: AskService | None = None,
    ready: Callable[[], Awaitable[bool]] | None = None,
    routers: Sequence[APIRouter] = (),
    recorder: QueryRecorder | None = None,
    hash_key: Callable[[str], str] | None = None,
) -> FastAPI:
    """The query API bound to one search service (and one ask service, for ``/v1/ask``).

    ``ready`` is the readiness check of ``/readyz`` (index open, Kafka reachable), supplied by
    the composition root. ``routers`` are included behind the same key check and rate limit.
    ``recorder`` logs every search and answer and takes ``/v1/feedback`` (which answers 503
    without one); ``hash_key`` is the keyed hash the logs name the caller's API key by.
    """
    app = FastAPI(
        title="tickerwire",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        max_body_size=settings.max_request_bytes,
    )

    @app.exception_handler(ValidationError)
    async def invalid_query(request: Request, exc: ValidationError) -> JSONResponse:
        # a request the index refuses as invalid (SearchService already answers a query no
        # keyword can match, so this is a caller's error such as a bad filter)
        return JSONResponse(status_code=422, content={"detail": exc.reason})

    require_key = Guard(settings, hash_key)
    protected = APIRouter(dependencies=[Depends(require_key)], responses=GUARDED_ERRORS)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        endpoint = route_template(request)
        QUERY_REQUESTS.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        QUERY_REQUEST_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "not ready: index closed or Kafka away"}})
    async def readyz(response: Response) -> dict[str, Any]:
        ok = await ready() if ready else True
        if not ok:
            response.status_code = 503
        return {"ready": ok}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @protected.post("/v1/search")
    async def v1_search(body: SearchIn, request: Request) -> dict[str, Any]:
        query_id = uuid.uuid4().hex
        result = await search.search(
            body.query,
            k=body.k,
            mode=body.mode,
            filters=body.filters.to_filters(),
            understand=body.understand,
        )
        if result.hits:
            QUERY_TOP_SCORE.labels(endpoint="/v1/search", mode=body.mode).observe(
                result.hits[0].score
            )
        watermark = watermark_json(result.watermark)
        if recorder is not None:
            logged = _logged_request(body.query, body, request)
            recorder.search(logged, query_id, result, watermark)
        return {
            "query_id": query_id,
            "hits": [hit_to_json(h) for h in result.hits],
            "understood": result.understood,
            "watermark": watermark,
            "timings": result.timings,
        }

    @protected.post("/v1/ask", response_model=None, responses=error_responses("502", "503"))
    async def v1_ask(body: AskIn, request: Request) -> dict[str, Any] | StreamingResponse:
        if ask is None:
            raise HTTPException(status_code=503, detail="no answer service configured")
        events = ask.ask(
            body.question,
            k=body.k,
            mode=body.mode,
            filters=body.filters.to_filters(),
            understand=body.understand,
        )
        if recorder is not None:
            events = _logged(events, recorder, _logged_request(body.question, body, request))
        if "text/event-stream" in request.headers.get("accept", ""):
            return StreamingResponse(
                _stream(events),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )
        try:
            return await final_response(events)
        except AnswerModelError as exc:
            raise HTTPException(status_code=502, detail=f"answer model failed: {exc}") from exc

    @protected.post("/v1/feedback", status_code=202, responses=error_responses("503"))
    async def v1_feedback(body: FeedbackIn, request: Request) -> dict[str, Any]:
        # The query log is asynchronous, so an unknown query_id is accepted here: the join agent
        # keeps feedback whose query it has not seen for the retention, then drops and counts it.
        if recorder is None:
            raise HTTPException(status_code=503, detail="the query log is turned off")
        accepted = recorder.feedback(
            body.query_id,
            body.rating,
            comment=body.comment,
            corrected_answer=body.corrected_answer,
            wrong_citations=body.wrong_citations,
            key_hash=request.state.key_hash,
        )
        if not accepted:
            raise HTTPException(
                status_code=503,
                detail="feedback log is full (Kafka is slow or away); retry later",
                headers={"Retry-After": "5"},
            )
        return {"accepted": True, "query_id": body.query_id}

    app.include_router(protected)
    for router in routers:
        app.include_router(router, dependencies=[Depends(require_key)], responses=GUARDED_ERRORS)

    # The page and its files are open; its API calls send the key (see query/live.py).
    app.include_router(page_router())

    return app


def _logged_request(question: str, body: SearchIn | AskIn, request: Request) -> LoggedRequest:
    filters = body.filters.model_dump(mode="json", exclude_defaults=True)
    return LoggedRequest(question, body.mode, body.k, filters, request.state.key_hash)


async def _logged(
    events: AsyncIterator[AskEvent], recorder: QueryRecorder, logged: LoggedRequest
) -> AsyncIterator[AskEvent]:
    """``events`` unchanged; the final one is logged on its way out."""
    async for event in events:
        if event.event == "final":
            recorder.ask(logged, event)
        yield event


async def _stream(events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """The ask events as SSE; a failure after the first event becomes an ``error`` event."""
    try:
        async for event in events:
            yield sse(event.event, event.data)
    except AnswerModelError as exc:
        yield sse("error", {"detail": f"answer model failed: {exc}"})
    except Exception as exc:  # noqa: BLE001 - the stream has started; report, never hang
        yield sse("error", {"detail": f"{type(exc).__name__}: {exc}"})
