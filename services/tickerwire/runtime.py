"""The composition root: builds settings-driven resources and runs the stream worker.

Entry points (the CLI) call :func:`run_worker`; tests build the same graph with other parts
plugged in through :func:`open_resources` and :func:`make_handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import mode
import structlog
import uvicorn

from tickerwire.core.logging import configure_logging
from tickerwire.core.ports import Embedder, VectorIndex
from tickerwire.core.settings import Settings
from tickerwire.pipeline.sparse import SparseEncoder
from tickerwire.query.api import create_app
from tickerwire.query.search import SearchService
from tickerwire.stages.app import ALL_STAGES, FaustSender, Handler, StageDeps, StageName, build_app
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.index import IndexStage
from tickerwire.stages.preprocess import ChunkerConfig, PreprocessStage

log = structlog.get_logger("tickerwire.runtime")


@dataclass
class Resources:
    """Long-lived adapters shared by the stages and the query API."""

    settings: Settings
    embedder: Embedder
    sparse: SparseEncoder
    index: VectorIndex | None

    def search_service(self) -> SearchService:
        """The search use case over these resources (needs the index)."""
        assert self.index is not None, "open_resources(..., with_index=True) first"
        return SearchService(
            embedder=self.embedder,
            sparse=self.sparse,
            index=self.index,
            hybrid=self.settings.hybrid_params(),
        )

    async def aclose(self) -> None:
        """Close the index (flushes Edge) and the embedder; idempotent."""
        if self.index is not None:
            await self.index.aclose()
        await self.embedder.aclose()


async def open_resources(settings: Settings, *, with_index: bool) -> Resources:
    """Open the configured embedder, sparse encoder and (optionally) the vector index."""
    from tickerwire.adapters.embed_factory import open_embedder
    from tickerwire.adapters.index_factory import open_index

    embedder = open_embedder(settings)
    index = None
    if with_index:
        index = open_index(settings, embedder.dim)
        await index.ensure_collection(embedder.dim)
    return Resources(settings=settings, embedder=embedder, sparse=SparseEncoder(), index=index)


def chunker_for(settings: Settings, embedder: Embedder) -> ChunkerConfig:
    """Chunking with the embedder's tokenizer, never longer than the model's input."""
    max_tokens = min(settings.chunk_tokens, embedder.max_tokens - 2)
    return ChunkerConfig(
        # Building a tokenizer-backed splitter costs ~30 ms; titles vary the body budget only a
        # little, so splitters are cached per (capacity, overlap).
        make_splitter=functools.lru_cache(maxsize=256)(embedder.splitter),
        count_tokens=embedder.count_tokens,
        max_tokens=max_tokens,
        overlap=min(settings.chunk_overlap, max_tokens // 4),
    )


def make_handlers(
    res: Resources, stages: Sequence[StageName], built: dict[str, Any] | None = None
) -> Any:  # returns the StageDeps.make_handlers callable
    """The factory faust calls once the app (and the state table) exist.

    The stage objects it builds are also put in ``built`` (by stage name) for the caller.
    """
    built = built if built is not None else {}

    def factory(app: faust.App, table: Any) -> dict[StageName, Handler]:
        sender = FaustSender(app)
        handlers: dict[StageName, Handler] = {}
        if "preprocess" in stages:
            handlers["preprocess"] = PreprocessStage(
                sender=sender,
                state=table,
                chunker=chunker_for(res.settings, res.embedder),
                max_body_bytes=res.settings.max_body_bytes,
                threads=res.settings.preprocess_threads,
            ).handle
        if "embed" in stages:
            handlers["embed"] = EmbedStage(
                sender=sender, embedder=res.embedder, sparse=res.sparse
            ).handle
        if "index" in stages:
            assert res.index is not None
            built["index"] = IndexStage(index=res.index, sender=sender)
            handlers["index"] = built["index"].handle
        return handlers

    return factory


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the worker owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpService(mode.Service):
    """Serves the query API inside the worker's event loop."""

    def __init__(self, res: Resources, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        assert res.index is not None
        search = res.search_service()
        asgi = create_app(settings=res.settings, search=search)
        config = uvicorn.Config(
            asgi, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._task = asyncio.ensure_future(self._server.serve())
        log.info("http_started", host=self._server.config.host, port=self._server.config.port)

    async def on_stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def serve_query(settings: Settings) -> None:
    """Serve the query API alone until SIGTERM/SIGINT (uvicorn handles the signals)."""
    res = await open_resources(settings, with_index=True)
    try:
        assert res.index is not None
        search = res.search_service()
        asgi = create_app(settings=res.settings, search=search)
        config = uvicorn.Config(
            asgi,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
        )
        await uvicorn.Server(config).serve()
    finally:
        await res.aclose()


class IndexMaintenance(mode.Service):
    """Optimizes the index when it is worth it and ingestion has been quiet for a moment.

    ``VectorIndex.optimize`` never blocks the event loop (Edge builds HNSW in a child process;
    see docs/index-maintenance.md), so Kafka heartbeats go on and no rebalance is triggered.
    """

    def __init__(
        self,
        index: VectorIndex,
        stage: IndexStage | None,
        *,
        interval_s: float = 30.0,
        quiet_s: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._index = index
        self._stage = stage
        self._interval = interval_s
        self._quiet = quiet_s

    def _is_quiet(self) -> bool:
        if self._stage is None:
            return True
        return time.monotonic() - self._stage.last_activity >= self._quiet

    @mode.Service.task
    async def _maintain(self) -> None:
        while not self.should_stop:
            await self.sleep(self._interval)
            if self.should_stop:
                return
            try:
                if self._is_quiet() and await self._index.needs_optimize():
                    log.info("index_optimize_starting")
                    await self._index.optimize()
                    log.info("index_optimize_done")
            except Exception:  # maintenance failing must not stop ingestion
                log.exception("index_optimize_failed")


class TickerwireWorker(faust.Worker):
    """faust's worker with tickerwire's structlog setup; SIGTERM and SIGINT drain and commit."""

    def __init__(
        self, *args: Any, settings: Settings, resources: Resources | None = None, **kwargs: Any
    ) -> None:
        self._tw_settings = settings
        self._resources = resources
        super().__init__(*args, **kwargs)
        self.spinner = None  # faust's terminal spinner writes escape codes into JSON logs

    def _shutdown_loop(self) -> None:
        # The services have stopped; close the resources on the worker's loop before mode closes
        # it: the OpenAI embedder's HTTP client cannot be closed from another loop ("Event loop
        # is closed" made a clean SIGTERM exit with status 1).
        if self._resources is not None:
            self.loop.run_until_complete(self._resources.aclose())
        super()._shutdown_loop()

    def _setup_logging(self) -> None:
        configure_logging(
            fmt=self._tw_settings.log_format,
            level=self._tw_settings.log_level,
            service=True,
        )


def run_worker(
    settings: Settings,
    *,
    stages: tuple[StageName, ...] = ALL_STAGES,
    serve_http: bool = True,
    app_id: str = "tickerwire",
) -> None:
    """Run the selected stages (and the query API) until SIGTERM/SIGINT; then drain and close."""
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with_index = "index" in stages or serve_http
    res = loop.run_until_complete(open_resources(settings, with_index=with_index))
    built: dict[str, Any] = {}
    app = build_app(
        StageDeps(
            settings=settings,
            stages=stages,
            make_handlers=make_handlers(res, stages, built),
            app_id=app_id,
        )
    )
    services: list[Any] = []
    if "index" in stages and res.index is not None:
        services.append(IndexMaintenance(res.index, built.get("index"), loop=loop))
    if serve_http:
        services.append(HttpService(res, settings.http_host, settings.http_port, loop=loop))
    worker = TickerwireWorker(
        app,
        *services,
        settings=settings,
        resources=res,
        loop=loop,
        loglevel="WARNING",
        redirect_stdouts=False,
        quiet=True,
    )
    log.info("worker_starting", stages=list(stages), app_id=app_id, http=serve_http)
    try:
        worker.execute_from_commandline()
    finally:
        asyncio.run(res.aclose())
        log.info("worker_stopped")
