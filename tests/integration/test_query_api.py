"""The query API over a real Edge index: metrics labels, readiness, API keys, limits, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from tests.query_support import SPARSE, BagOfWordsEmbedder, doc, load_index
from tests.secret_scan import register_secret
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.core.settings import Settings
from tickerwire.query.api import OPEN_PATHS, create_app, iter_routes
from tickerwire.query.live import live_router
from tickerwire.query.search import SearchService
from tickerwire.runtime import readiness_check

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = register_secret("s3cret-key-for-tests")
DOCS = [
    doc("news:a", "Acme reported revenue of $1,234 million for the quarter.", tickers=["ACME"]),
    doc("news:b", "Globex cut its dividend to $0.10 per share.", tickers=["GBX"]),
]


@pytest_asyncio.fixture(loop_scope="session")
async def index(tmp_path: Path) -> AsyncIterator[EdgeIndex]:
    async with await load_index(tmp_path / "edge", DOCS) as idx:
        yield idx


def search_service(index: EdgeIndex) -> SearchService:
    return SearchService(embedder=BagOfWordsEmbedder(), sparse=SPARSE, index=index)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def make_app(
    index: EdgeIndex,
    ready: Callable[[], Awaitable[bool]] | None = None,
    **settings: Any,
) -> FastAPI:
    search = search_service(index)
    return create_app(
        settings=Settings(**settings),
        search=search,
        ready=ready,
        routers=[live_router(search=search)],
    )


def sample_value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_request_metrics_are_labelled_by_route_template_not_raw_path(
    index: EdgeIndex,
) -> None:
    async with client(make_app(index)) as http:
        for i in range(3):
            resp = await http.get(f"/v1/documents/nope-{i}")
            assert resp.status_code == 404
    template = {"endpoint": "/v1/documents/{doc_id:path}", "status": "404"}
    assert sample_value("tickerwire_query_requests_total", template) >= 3
    raw = {"endpoint": "/v1/documents/nope-0", "status": "404"}
    assert REGISTRY.get_sample_value("tickerwire_query_requests_total", raw) is None
    assert (
        sample_value(
            "tickerwire_query_request_seconds_count",
            {"endpoint": "/v1/documents/{doc_id:path}"},
        )
        >= 3
    )


async def test_unknown_paths_share_one_metric_label(index: EdgeIndex) -> None:
    async with client(make_app(index)) as http:
        assert (await http.get("/no/such/path/xyz")).status_code == 404
    assert (
        REGISTRY.get_sample_value(
            "tickerwire_query_requests_total", {"endpoint": "/no/such/path/xyz", "status": "404"}
        )
        is None
    )
    assert (
        sample_value("tickerwire_query_requests_total", {"endpoint": "unmatched", "status": "404"})
        >= 1
    )


async def test_readyz_is_503_when_kafka_is_unreachable(index: EdgeIndex) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:9")  # discard port: nothing listens
    ready = readiness_check(settings, index, timeout_s=1.0)
    async with client(make_app(index, ready=ready)) as http:
        resp = await http.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {"ready": False}


async def test_readyz_is_503_when_the_index_is_closed(tmp_path: Path) -> None:
    idx = await load_index(tmp_path / "closed", DOCS)
    await idx.aclose()
    ready = readiness_check(Settings(kafka_bootstrap="127.0.0.1:9"), idx, timeout_s=1.0)
    async with client(make_app(idx, ready=ready)) as http:
        assert (await http.get("/readyz")).status_code == 503


@pytest.mark.kafka
async def test_readyz_is_200_with_index_open_and_kafka_reachable(
    index: EdgeIndex, kafka_bootstrap: str
) -> None:
    ready = readiness_check(Settings(kafka_bootstrap=kafka_bootstrap), index)
    async with client(make_app(index, ready=ready)) as http:
        resp = await http.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"ready": True}


async def test_bearer_and_x_api_key_are_accepted(index: EdgeIndex) -> None:
    async with client(make_app(index, api_keys=f"other,{KEY}")) as http:
        body = {"query": "Acme revenue"}
        bearer = await http.post(
            "/v1/search", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
        header = await http.post("/v1/search", json=body, headers={"X-API-Key": KEY})
    assert bearer.status_code == 200
    assert header.status_code == 200
    assert bearer.json()["hits"][0]["doc_id"] == "news:a"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": KEY}],
    ids=["missing", "wrong-bearer", "wrong-x-api-key", "bearer-scheme-missing"],
)
async def test_missing_or_wrong_key_is_401(index: EdgeIndex, headers: dict[str, str]) -> None:
    async with client(make_app(index, api_keys=KEY)) as http:
        for method, path in [
            ("POST", "/v1/search"),
            ("POST", "/v1/ask"),
            ("GET", "/v1/status"),
            ("GET", "/v1/documents/news:a"),
        ]:
            resp = await http.request(method, path, json={"query": "x"}, headers=headers)
            assert resp.status_code == 401, (method, path)
            assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_health_readiness_and_metrics_stay_open_with_keys(index: EdgeIndex) -> None:
    async with client(make_app(index, api_keys=KEY)) as http:
        for path in sorted(OPEN_PATHS):
            served = path.replace("{name}", "app.js")
            assert (await http.get(served)).status_code == 200, path


async def test_every_route_but_health_and_metrics_needs_a_key(index: EdgeIndex) -> None:
    """Walks app.routes, including a router added the way the live page adds its routes."""
    extra = APIRouter()

    @extra.get("/v1/extra/{thing}")
    async def extra_route(thing: str) -> dict[str, str]:
        return {"thing": thing}

    search = search_service(index)
    app = create_app(
        settings=Settings(api_keys=KEY),
        search=search,
        routers=[extra, live_router(search=search)],
    )
    routes = [r for r in iter_routes(app.routes) if getattr(r, "methods", None)]
    assert {r.path for r in routes} >= {"/v1/search", "/v1/ask", "/v1/extra/{thing}"}
    async with client(app) as http:
        for route in routes:
            path = route.path.replace("{doc_id:path}", "x").replace("{thing}", "x")
            path = path.replace("{name}", "app.js")
            for method in route.methods:
                resp = await http.request(method, path, json={})
                if route.path in OPEN_PATHS:
                    assert resp.status_code == 200, route.path
                else:
                    assert resp.status_code == 401, (method, route.path)
    assert not [r for r in routes if r.path in ("/docs", "/redoc", "/openapi.json")]


async def test_too_many_requests_get_429_with_retry_after(index: EdgeIndex) -> None:
    app = make_app(index, api_keys=f"{KEY},second-key", api_rate_limit="3/minute")
    async with client(app) as http:
        codes = [
            (await http.post("/v1/search", json={"query": "acme"}, headers={"X-API-Key": KEY}))
            for _ in range(4)
        ]
        other = await http.post(
            "/v1/search", json={"query": "acme"}, headers={"X-API-Key": "second-key"}
        )
        health = await http.get("/healthz")
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert 1 <= int(codes[-1].headers["Retry-After"]) <= 60
    assert other.status_code == 200  # the limit is per key
    assert health.status_code == 200


async def test_an_open_api_is_not_rate_limited(index: EdgeIndex) -> None:
    """Without keys the API is a local one: tests and tools poll it freely."""
    async with client(make_app(index, api_rate_limit="2/minute")) as http:
        codes = [(await http.get("/v1/documents/news:a")).status_code for _ in range(5)]
    assert codes == [200] * 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "x", "k": 0}, "k"),
        ({"query": "x", "k": 1000}, "k"),
        ({"query": "x", "mode": "fuzzy"}, "mode"),
        ({"query": "x", "filters": {"as_of": "2026-01-01T00:00:00"}}, "as_of"),
        ({"query": "x", "filters": {"tickers": ["X" * 40]}}, "tickers"),
        ({"query": "x", "surprise": 1}, "surprise"),
        ({"query": 7}, "query"),
    ],
)
async def test_invalid_search_input_is_422_naming_the_field(
    index: EdgeIndex, body: dict[str, Any], field: str
) -> None:
    async with client(make_app(index)) as http:
        resp = await http.post("/v1/search", json=body)
    assert resp.status_code == 422
    assert field in resp.text


async def test_a_body_that_is_not_json_is_422(index: EdgeIndex) -> None:
    async with client(make_app(index)) as http:
        resp = await http.post(
            "/v1/search", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert resp.status_code == 422


async def test_an_oversized_body_is_413(index: EdgeIndex) -> None:
    async with client(make_app(index, max_request_bytes=2048)) as http:
        resp = await http.post("/v1/search", json={"query": "x" * 5000})
    assert resp.status_code == 413


async def test_keys_are_never_logged(index: EdgeIndex) -> None:
    with capture_logs() as logs:
        async with client(make_app(index, api_keys=KEY)) as http:
            await http.post("/v1/search", json={"query": "acme"}, headers={"X-API-Key": KEY})
            await http.post("/v1/search", json={"query": "acme"}, headers={"X-API-Key": KEY + "x"})
    assert KEY not in repr(logs)


async def test_a_query_no_keyword_can_match_is_answered_not_refused(index: EdgeIndex) -> None:
    # Such a query was first a 500, then a 422 ("needs a sparse query vector"), which
    # schemathesis flagged as refusing a valid request. It is answered now: hybrid ranks by
    # the dense side alone, and a keyword search finds nothing.
    async with client(make_app(index)) as http:
        for query in ("Á", "the of and"):
            hybrid = await http.post("/v1/search", json={"query": query})
            assert hybrid.status_code == 200, hybrid.text
            assert hybrid.json()["hits"]
            sparse = await http.post("/v1/search", json={"query": query, "mode": "sparse"})
            assert sparse.status_code == 200, sparse.text
            assert sparse.json()["hits"] == []
