"""``tickerwire up``, ``tickerwire worker STAGE`` and ``tickerwire search QUERY``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from tickerwire.core.errors import BrokerRejectedError
from tickerwire.core.logging import configure_logging
from tickerwire.core.ports import SearchFilters
from tickerwire.core.settings import Settings, load_settings

console = Console(stderr=False)


class StageChoice(StrEnum):
    preprocess = "preprocess"
    embed = "embed"
    index_ = "index"
    feedback = "feedback"


class ModeChoice(StrEnum):
    hybrid = "hybrid"
    dense = "dense"
    sparse = "sparse"


@contextmanager
def _refused_exits() -> Iterator[None]:
    """A broker that refuses the login or the TLS handshake ends the command with exit code
    2 and one clear line on stderr (retrying cannot fix the settings)."""
    try:
        yield
    except BrokerRejectedError as exc:
        typer.echo(f"error: {exc.reason}", err=True)
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    """Add the run commands to the root app."""
    app.command("up")(up)
    app.command("worker")(worker)
    app.command("search")(search)
    app.command("query")(query)


def up(
    no_http: Annotated[bool, typer.Option("--no-http", help="Do not serve the query API.")] = False,
) -> None:
    """Run all three stages and the query API in one process (Qdrant Edge under the data dir)."""
    from tickerwire.runtime import run_worker

    settings = load_settings()
    with _refused_exits():
        run_worker(settings, serve_http=not no_http, app_id=settings.app_id)


def worker(
    stage: Annotated[StageChoice, typer.Argument(help="The stage to run.")],
    http: Annotated[bool, typer.Option("--http", help="Also serve the query API.")] = False,
) -> None:
    """Run one stage in its own consumer group (for server mode and scale-out).

    ``/metrics`` is served on TICKERWIRE_METRICS_PORT (and on the API port too with --http).
    """
    from tickerwire.runtime import run_worker

    name = stage.value
    settings = load_settings()
    with _refused_exits():
        run_worker(
            settings,
            stages=(name,),  # type: ignore[arg-type]
            serve_http=http,
            app_id=f"{settings.app_id}-{name}",
            metrics_port=settings.metrics_port,
        )


def query() -> None:
    """Serve only the query API (stateless; for server mode behind a load balancer)."""
    from tickerwire.runtime import serve_query

    settings = load_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=True)
    with _refused_exits():
        asyncio.run(serve_query(settings))


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many hits.")] = 5,
    mode: Annotated[ModeChoice, typer.Option(help="hybrid, dense or sparse.")] = ModeChoice.hybrid,
    ticker: Annotated[list[str] | None, typer.Option("--ticker", help="Filter by ticker.")] = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="Only what was published by then (RFC 3339).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON response.")] = False,
    local: Annotated[
        bool, typer.Option("--local", help="Open the index directly instead of the running API.")
    ] = False,
) -> None:
    """Search the live index: through the running query API, or the index directly (--local)."""
    settings = load_settings()
    configure_logging(fmt=settings.log_format, level="warning", service=False)
    body: dict[str, Any] = {"query": query, "k": k, "mode": mode.value, "filters": {}}
    if ticker:
        body["filters"]["tickers"] = [t.upper() for t in ticker]
    if as_of:
        body["filters"]["as_of"] = as_of.isoformat()
    result = asyncio.run(_search_local(settings, body)) if local else _search_http(settings, body)
    if as_json:
        console.print_json(json.dumps(result))
        return
    _print_hits(result)


def _search_http(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    headers = {}
    if settings.api_keys:
        headers["Authorization"] = f"Bearer {settings.api_keys[0].get_secret_value()}"
    url = f"http://{settings.http_host}:{settings.http_port}/v1/search"
    try:
        resp = httpx.post(url, json=body, headers=headers, timeout=30.0)
    except httpx.ConnectError:
        console.print(
            f"[red]No query API at {url}.[/red] Start it with `tickerwire up`, "
            "or search a stopped index with --local."
        )
        raise typer.Exit(2) from None
    if resp.status_code != 200:
        console.print(f"[red]{resp.status_code}[/red] {resp.text}")
        raise typer.Exit(1)
    data: dict[str, Any] = resp.json()
    return data


async def _search_local(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    from tickerwire.query.api import watermark_json
    from tickerwire.query.search import hit_to_json
    from tickerwire.runtime import open_resources

    res = await open_resources(settings, with_index=True)
    try:
        assert res.index is not None
        svc = res.search_service()
        flt = body["filters"]
        filters = SearchFilters(
            tickers=tuple(flt.get("tickers", ())),
            as_of=datetime.fromisoformat(flt["as_of"]) if "as_of" in flt else None,
        )
        result = await svc.search(body["query"], k=body["k"], mode=body["mode"], filters=filters)
        return {
            "hits": [hit_to_json(h) for h in result.hits],
            "watermark": watermark_json(result.watermark),
            "timings": result.timings,
        }
    finally:
        await res.aclose()


def _print_hits(result: dict[str, Any]) -> None:
    table = Table(show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("document")
    table.add_column("snippet")
    for n, hit in enumerate(result["hits"], start=1):
        doc = f"{hit['title']}\n[dim]{hit['doc_id']} · {hit['published_at']}[/dim]"
        snippet = " ".join(str(hit["text"]).split())[:240]
        table.add_row(str(n), f"{hit['score']:.4f}", doc, snippet)
    console.print(table)
    if result.get("understood"):
        u = result["understood"]
        console.print(
            f"[dim]understood: tickers {u['tickers']} · periods {u['periods']} · "
            f"applied as {u['applied_as']}[/dim]"
        )
    wm = result["watermark"]
    console.print(
        f"[dim]watermark: published {wm['published_at']} · indexed {wm['indexed_at']} · "
        f"{result['timings'].get('total_ms', '?')} ms[/dim]"
    )
