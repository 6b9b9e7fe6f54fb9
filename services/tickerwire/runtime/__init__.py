"""The composition root: builds settings-driven resources and runs the stream worker.

Entry points (the CLI) call :func:`run_worker`; tests build the same graph with other parts
plugged in through :func:`open_resources` and :func:`make_handlers`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
import mode
import structlog
import uvicorn

from tickerwire.adapters.kafka_errors import check_login
from tickerwire.adapters.kafka_options import KafkaConnection, client_options
from tickerwire.core.errors import BrokerError
from tickerwire.core.logging import configure_logging
from tickerwire.core.ports import AnswerModel, Embedder, SparseEncoder, VectorIndex
from tickerwire.core.settings import Settings
from tickerwire.core.topics import FEEDBACK_STAGE, WorkerStage
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.query.api import create_app
from tickerwire.query.ask import AskService, OfflineAnswerer
from tickerwire.query.events import EventBroadcaster, index_publisher
from tickerwire.query.learning import QueryRecorder, key_hasher
from tickerwire.query.live import LiveDeps, live_router
from tickerwire.query.search import SearchService
from tickerwire.query.understanding import EntityRegistry
from tickerwire.runtime.services import (
    AsgiService,
    IndexMaintenance,
    LagCollector,
    metrics_service,
)
from tickerwire.stages.app import ALL_STAGES, FaustSender, Handler, StageDeps, StageName, build_app
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.index import IndexStage
from tickerwire.stages.preprocess import ChunkerConfig, PreprocessStage

if TYPE_CHECKING:
    from tickerwire.adapters.entity_feed import EntityFeed
    from tickerwire.adapters.kafka_lag import StageLagReader
    from tickerwire.adapters.query_log import KafkaQueryLog

log = structlog.get_logger("tickerwire.runtime")


@dataclass
class Resources:
    """Long-lived adapters shared by the stages and the query API."""

    settings: Settings
    embedder: Embedder
    sparse: SparseEncoder
    index: VectorIndex | None
    #: Names and tickers learned from the documents (fed by :meth:`follow_entities`).
    registry: EntityRegistry = field(default_factory=EntityRegistry)
    entity_feed: EntityFeed | None = None
    #: The query log's Kafka sink (opened by :meth:`recorder`).
    query_log: KafkaQueryLog | None = None

    async def follow_entities(self, bootstrap: KafkaConnection | None = None) -> EntityFeed:
        """Start feeding :attr:`registry` from the entities topic (once); returns the feed."""
        from tickerwire.adapters.entity_feed import EntityFeed

        if self.entity_feed is None:
            self.entity_feed = EntityFeed(bootstrap or client_options(self.settings), self.registry)
            await self.entity_feed.start()
        return self.entity_feed

    #: index events for GET /v1/events, published by the index stage of this process.
    events: EventBroadcaster = field(default_factory=EventBroadcaster)

    def search_service(self) -> SearchService:
        """The search use case over these resources (needs the index)."""
        assert self.index is not None, "open_resources(..., with_index=True) first"
        return SearchService(
            embedder=self.embedder,
            sparse=self.sparse,
            index=self.index,
            hybrid=self.settings.hybrid_params(),
            registry=self.registry,
        )

    def ask_service(self, model: AnswerModel) -> AskService:
        """The ask use case over these resources, answering with ``model``."""
        return AskService(
            search=self.search_service(),
            model=model,
            min_evidence=self.settings.ask_min_evidence,
        )

    def recorder(self) -> QueryRecorder | None:
        """The query recorder over a Kafka query log (once); None when the log is turned off."""
        if not self.settings.query_log:
            return None
        if self.query_log is None:
            from tickerwire.adapters.query_log import KafkaQueryLog

            self.query_log = KafkaQueryLog(self.settings)
        return QueryRecorder(self.query_log)

    async def aclose(self) -> None:
        """Stop the entity feed and the query log, close the index (flushes Edge) and the
        embedder; idempotent."""
        if self.entity_feed is not None:
            await self.entity_feed.aclose()
        if self.query_log is not None:
            await self.query_log.aclose()
        if self.index is not None:
            await self.index.aclose()
        await self.embedder.aclose()


def open_answer_model(settings: Settings) -> AnswerModel:
    """The configured answer model: offline (default) or an OpenAI-compatible chat model."""
    if settings.llm == "openai":
        from tickerwire.adapters.llm_openai import OpenAIAnswerer

        return OpenAIAnswerer.from_settings(settings)
    return OfflineAnswerer()


def readiness_check(
    settings: Settings, index: VectorIndex, *, timeout_s: float = 2.0
) -> Callable[[], Awaitable[bool]]:
    """``/readyz``: the index answers a count and the Kafka bootstrap server accepts a client."""
    from tickerwire.adapters.kafka_admin import admin_client

    async def ready() -> bool:
        try:
            await index.count()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
            log.warning("not_ready", part="index", error=repr(exc))
            return False
        try:
            async with admin_client(client_options(settings), timeout_s=timeout_s):
                pass
        except BrokerError as exc:
            log.warning("not_ready", part="kafka", error=exc.reason)
            return False
        return True

    return ready


def query_app(res: Resources, model: AnswerModel, live: LiveDeps) -> Any:
    """The query API over ``res``: search, ask (with ``model``), the readiness check, and the
    live routes (page, events, status, documents, movers) over ``live``."""
    assert res.index is not None, "open_resources(..., with_index=True) first"
    search = res.search_service()
    salt = res.settings.query_log_key_salt
    return create_app(
        settings=res.settings,
        search=search,
        ask=res.ask_service(model),
        ready=readiness_check(res.settings, res.index),
        routers=[live_router(search=search, deps=live)],
        recorder=res.recorder(),
        hash_key=key_hasher(salt.get_secret_value().encode() if salt is not None else None),
    )


def stage_lag_reader(settings: Settings) -> StageLagReader:
    """Per-stage consumer lag of this deployment's groups, for /v1/status."""
    from tickerwire.adapters.kafka_lag import StageLagReader
    from tickerwire.core.topics import STAGE_INPUT

    topics: dict[str, str] = {stage: topic for stage, topic in STAGE_INPUT.items()}
    return StageLagReader(client_options(settings), settings.app_id, topics)


async def open_resources(
    settings: Settings, *, with_index: bool, edge_path: Path | None = None
) -> Resources:
    """Open the configured embedder, sparse encoder and (optionally) the vector index (Edge:
    the one at ``edge_path`` instead of the data dir's)."""
    from tickerwire.adapters.embed_factory import open_embedder
    from tickerwire.adapters.index_factory import open_index

    embedder = open_embedder(settings)
    index = None
    if with_index:
        index = open_index(settings, embedder.dim, edge_path)
        await index.ensure_collection(embedder.dim)
    return Resources(settings=settings, embedder=embedder, sparse=BM25Encoder(), index=index)


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
        header=settings.chunk_header,
        sections=settings.chunk_sections,
    )


def make_handlers(
    res: Resources, stages: Sequence[WorkerStage], built: dict[str, Any] | None = None
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
                tombstone_retention_s=res.settings.tombstone_retention_s,
            ).handle
        if "embed" in stages:
            handlers["embed"] = EmbedStage(
                sender=sender, embedder=res.embedder, sparse=res.sparse
            ).handle
        if "index" in stages:
            assert res.index is not None
            built["index"] = IndexStage(
                index=res.index,
                sender=sender,
                on_applied=index_publisher(res.events, res.index),
            )
            handlers["index"] = built["index"].handle
        return handlers

    return factory


class EntityFollower(mode.Service):
    """Feeds the query service's entity registry from the entities topic while the worker runs."""

    def __init__(self, res: Resources, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._res = res

    async def on_start(self) -> None:
        await self._res.follow_entities()

    async def on_stop(self) -> None:
        if self._res.entity_feed is not None:  # its task lives on this loop: stop it here
            await self._res.entity_feed.aclose()


def query_service(res: Resources, host: str, port: int, **kwargs: Any) -> AsgiService:
    """The query API over ``res`` (needs the index), as a service of the worker."""
    model = open_answer_model(res.settings)
    lag = stage_lag_reader(res.settings)
    live = LiveDeps(events=res.events, lag=lag)
    return AsgiService(
        query_app(res, model, live),
        host,
        port,
        what="query",
        before_stop=live.closing.set,  # open event streams end, so the server can stop
        closers=(model.aclose, lag.aclose),
        **kwargs,
    )


async def serve_query(settings: Settings) -> None:
    """Serve the query API alone until SIGTERM/SIGINT (uvicorn handles the signals)."""
    await check_login(client_options(settings))
    res = await open_resources(settings, with_index=True)
    model = open_answer_model(settings)
    lag = stage_lag_reader(settings)
    try:
        await res.follow_entities()
        # No index stage runs here, so this process has no index events of its own: /v1/events
        # answers 503 and says so (README, "The live page").
        asgi = query_app(res, model, LiveDeps(lag=lag))
        config = uvicorn.Config(
            asgi,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
        )
        await uvicorn.Server(config).serve()
    finally:
        await lag.aclose()
        await model.aclose()
        await res.aclose()


#: The exit status of a worker whose clean stop overran ``shutdown_timeout_s``.
EXIT_SHUTDOWN_TIMEOUT = 75


class TickerwireWorker(faust.Worker):
    """faust's worker with tickerwire's structlog setup; SIGTERM and SIGINT drain and commit."""

    def __init__(
        self, *args: Any, settings: Settings, resources: Resources | None = None, **kwargs: Any
    ) -> None:
        self._tw_settings = settings
        self._resources = resources
        super().__init__(*args, **kwargs)
        self.spinner = None  # faust's terminal spinner writes escape codes into JSON logs
        self._shutdown_deadline: threading.Timer | None = None

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        """Start the clean stop, bounded by ``shutdown_timeout_s`` (a timer thread, so a
        blocked event loop cannot hold it off)."""
        if self._shutdown_deadline is None:
            timer = threading.Timer(self._tw_settings.shutdown_timeout_s, self._shutdown_overdue)
            timer.daemon = True
            timer.start()
            self._shutdown_deadline = timer
        super()._schedule_shutdown(signal)

    def _shutdown_overdue(self) -> None:
        """The clean stop did not finish in time (e.g. the broker is gone, and commits and
        producer flushes wait on it): exit now. Only finished batches were committed, so
        nothing is lost; the rest is consumed again after the restart."""
        log.warning("worker_shutdown_timeout", seconds=self._tw_settings.shutdown_timeout_s)
        os._exit(EXIT_SHUTDOWN_TIMEOUT)

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


#: What ``tickerwire up`` runs: the three stream stages and the feedback join.
UP_STAGES: tuple[WorkerStage, ...] = (*ALL_STAGES, FEEDBACK_STAGE)


def stream_stages(stages: Sequence[WorkerStage]) -> tuple[StageName, ...]:
    """The stream stages among ``stages`` (those with an input topic and a sequencer)."""
    return tuple(s for s in ALL_STAGES if s in stages)


def run_worker(
    settings: Settings,
    *,
    stages: tuple[WorkerStage, ...] = UP_STAGES,
    serve_http: bool = True,
    app_id: str = "tickerwire",
    metrics_port: int = 0,
) -> None:
    """Run the selected stages (and the query API) until SIGTERM/SIGINT; then drain and close.

    ``metrics_port`` (not 0) serves ``/metrics`` on its own port besides the query API's.
    """
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # A wrong password or CA stops the worker here, with a clear BrokerRejectedError; faust
    # would only say "Unable to bootstrap".
    loop.run_until_complete(check_login(client_options(settings)))
    with_index = "index" in stages or serve_http
    res = loop.run_until_complete(open_resources(settings, with_index=with_index))
    built: dict[str, Any] = {}
    app = build_app(
        StageDeps(
            settings=settings,
            stages=stream_stages(stages),
            make_handlers=make_handlers(res, stages, built),
            app_id=app_id,
            join=FEEDBACK_STAGE in stages,
        )
    )
    services: list[Any] = []
    if "index" in stages and res.index is not None:
        services.append(
            IndexMaintenance(
                res.index,
                built.get("index"),
                interval_s=settings.index_maintenance_interval_s,
                quiet_s=settings.index_maintenance_quiet_s,
                loop=loop,
            )
        )
    if serve_http:
        services.append(EntityFollower(res, loop=loop))
        services.append(query_service(res, settings.http_host, settings.http_port, loop=loop))
    if metrics_port:
        services.append(metrics_service(settings.http_host, metrics_port, loop=loop))
    if settings.lag_interval_s > 0:
        services.append(
            LagCollector(client_options(settings), [app_id], settings.lag_interval_s, loop=loop)
        )
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
    log.info(
        "worker_starting",
        stages=list(stages),
        app_id=app_id,
        http=serve_http,
        metrics_port=metrics_port or None,
    )
    try:
        worker.execute_from_commandline()
    finally:
        asyncio.run(res.aclose())
        log.info("worker_stopped")
