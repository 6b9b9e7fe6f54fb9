"""Every route of the query API the composition root serves needs a key, except health,
readiness, metrics and the page shell with its static files (which hold no data).

Unlike tests/integration/test_query_api.py (an app built by hand), this walks the app that
``tickerwire up`` and ``tickerwire query`` serve (``runtime.query_app``), so a router another
part adds there is covered without a change here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from starlette.routing import Host, Mount, WebSocketRoute

from tests.query_support import SPARSE, BagOfWordsEmbedder, doc, load_index
from tests.secret_scan import register_secret
from tickerwire.core.settings import Settings
from tickerwire.query.api import OPEN_PATHS, iter_routes
from tickerwire.query.ask import OfflineAnswerer
from tickerwire.query.events import EventBroadcaster
from tickerwire.query.live import STATIC_DIR, STATIC_FILES, LiveDeps
from tickerwire.runtime import Resources, query_app

KEY = register_secret("route-walk-key-0b7e5d")
#: Open on purpose. Health, readiness (a bool) and metrics are for probes and scrapers. The page
#: shell and its three static files are the files of the wheel, byte for byte, with no data in
#: them: the browser must load the page before it can ask the user for a key, and every call the
#: page makes to /v1/* sends that key.
PUBLIC = {"/healthz", "/readyz", "/metrics", "/", "/static/{name}"}


@pytest_asyncio.fixture(loop_scope="session")
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(api_keys=KEY, kafka_bootstrap="127.0.0.1:9")  # nothing listens on 9
    docs = [doc("news:a", "Acme reported revenue of $1,234 million.", tickers=["ACME"])]
    async with await load_index(tmp_path / "edge", docs) as index:
        res = Resources(
            settings=settings, embedder=BagOfWordsEmbedder(), sparse=SPARSE, index=index
        )
        yield query_app(res, OfflineAnswerer(), LiveDeps(events=EventBroadcaster()))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def concrete(path: str) -> str:
    """A request path for a route template."""
    for param, value in (("{doc_id:path}", "news:a"), ("{name}", "app.js")):
        path = path.replace(param, value)
    assert "{" not in path, f"no sample value for a parameter of {path}"
    return path


def test_the_open_paths_are_exactly_the_ones_justified() -> None:
    assert OPEN_PATHS == PUBLIC


async def test_every_served_route_but_the_public_ones_needs_a_key(app: FastAPI) -> None:
    routes = list(iter_routes(app.routes))
    # A Mount (static files, a sub-app) or a websocket would bypass the key dependency.
    assert not [r for r in app.routes if isinstance(r, Mount | Host | WebSocketRoute)]
    assert routes and all(getattr(r, "methods", None) for r in routes), routes
    assert {"/v1/search", "/v1/ask", "/v1/status", "/v1/events"} <= {r.path for r in routes}
    guarded = 0
    async with client(app) as http:
        for route in routes:
            for method in sorted(route.methods):
                path = concrete(route.path)
                for headers in ({}, {"X-API-Key": "wrong-key"}, {"Authorization": "Bearer x"}):
                    resp = await http.request(method, path, json={}, headers=headers)
                    if route.path in PUBLIC:
                        assert resp.status_code in (200, 503), (method, route.path)
                    else:
                        assert resp.status_code == 401, (method, route.path, headers)
                guarded += route.path not in PUBLIC
    assert guarded >= 5


async def test_a_key_opens_the_guarded_routes(app: FastAPI) -> None:
    async with client(app) as http:
        search = await http.post(
            "/v1/search", json={"query": "Acme revenue"}, headers={"X-API-Key": KEY}
        )
        status = await http.get("/v1/status", headers={"Authorization": f"Bearer {KEY}"})
    assert search.status_code == 200 and search.json()["hits"]
    assert status.status_code == 200


async def test_the_public_page_and_files_serve_no_data(app: FastAPI) -> None:
    async with client(app) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.content == (STATIC_DIR / "index.html").read_bytes()
        for name in STATIC_FILES:
            resp = await http.get(f"/static/{name}")
            assert resp.content == (STATIC_DIR / name).read_bytes(), name
        for name in ("../api.py", "..%2Fapi.py", "secrets.txt", "index.htm"):
            assert (await http.get(f"/static/{name}")).status_code == 404, name
        ready = await http.get("/readyz")
        assert ready.json() == {"ready": False}  # a bool, nothing about the deployment
        assert (await http.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_no_schema_or_docs_page_is_served(app: FastAPI, path: str) -> None:
    async with client(app) as http:
        assert (await http.get(path)).status_code == 404
