"""Long-running services a worker hosts besides its faust agents: an ASGI server, the
consumer-lag collector and the index maintenance loop. The composition root wires them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import mode
import structlog
import uvicorn
from prometheus_client import make_asgi_app

from tickerwire.adapters.kafka_lag import LagReader
from tickerwire.adapters.kafka_options import KafkaConnection
from tickerwire.core.errors import BrokerError
from tickerwire.core.metrics import CONSUMER_LAG
from tickerwire.core.ports import VectorIndex
from tickerwire.stages.index import IndexStage

log = structlog.get_logger("tickerwire.runtime")


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the worker owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AsgiService(mode.Service):
    """Serves an ASGI app inside the worker's event loop."""

    def __init__(
        self,
        asgi: Any,
        host: str,
        port: int,
        *,
        what: str,
        before_stop: Callable[[], None] | None = None,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
        **kwargs: Any,
    ) -> None:
        """``before_stop`` runs when the service stops, before the server is told to exit (it
        ends open event streams); ``closers`` release what the app owns once it has stopped."""
        super().__init__(**kwargs)
        self._before_stop = before_stop
        self._closers = tuple(closers)
        config = uvicorn.Config(
            asgi, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = _QuietServer(config)
        self._what = what
        self._task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        self._task = asyncio.ensure_future(self._server.serve())
        log.info(
            "http_started",
            serves=self._what,
            host=self._server.config.host,
            port=self._server.config.port,
        )

    async def on_stop(self) -> None:
        if self._before_stop is not None:
            self._before_stop()
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for close in self._closers:
            await close()


def metrics_service(host: str, port: int, **kwargs: Any) -> AsgiService:
    """``/metrics`` of this process's registry on its own port (``tickerwire worker``)."""
    return AsgiService(make_asgi_app(), host, port, what="metrics", **kwargs)


class LagCollector(mode.Service):
    """Sets ``tickerwire_consumer_lag_records`` for this worker's consumer group periodically."""

    def __init__(
        self, bootstrap: KafkaConnection, groups: Sequence[str], interval_s: float, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._bootstrap = bootstrap
        self._groups = tuple(groups)
        self._interval = interval_s
        self._seen: set[tuple[str, str, int]] = set()

    @mode.Service.task
    async def _collect(self) -> None:
        reader: LagReader | None = None
        try:
            while not self.should_stop:
                try:
                    if reader is None:
                        reader = LagReader(self._bootstrap, timeout_s=min(self._interval, 30.0))
                        await reader.start()
                    self._publish(await reader.lag(self._groups))
                except BrokerError as exc:  # the metric goes stale; ingestion goes on
                    log.warning("consumer_lag_failed", error=str(exc))
                    if reader is not None:
                        await reader.close()
                    reader = None
                await self.sleep(self._interval)
        finally:
            if reader is not None:
                await reader.close()

    def _publish(self, lag: dict[tuple[str, str, int], int]) -> None:
        for gone in self._seen - lag.keys():
            group, topic, partition = gone
            CONSUMER_LAG.remove(group, topic, str(partition))
        for (group, topic, partition), value in lag.items():
            CONSUMER_LAG.labels(group=group, topic=topic, partition=str(partition)).set(value)
        self._seen = set(lag)


class IndexMaintenance(mode.Service):
    """Optimizes the index when it is worth it and ingestion has been quiet for a moment, and
    swaps in an index rebuilt by ``tickerwire reindex`` when it hands one over.

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
        handover_poll_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._index = index
        self._stage = stage
        self._interval = interval_s
        self._quiet = quiet_s
        self._handover_poll = handover_poll_s

    def _is_quiet(self) -> bool:
        if self._stage is None:
            return True
        return time.monotonic() - self._stage.last_activity >= self._quiet

    async def _every(
        self, interval: float, step: Callable[[], Awaitable[None]], failed: str
    ) -> None:
        """Run ``step`` every ``interval`` seconds until the service stops; a failing step is
        logged as ``failed`` and never stops ingestion (the live index stays as it was)."""
        while not self.should_stop:
            await self.sleep(interval)
            if self.should_stop:
                return
            try:
                await step()
            except Exception:
                log.exception(failed)

    async def _optimize_when_due(self) -> None:
        if self._is_quiet() and await self._index.needs_optimize():
            log.info("index_optimize_starting")
            await self._index.optimize()
            log.info("index_optimize_done")

    async def _adopt_handover(self) -> None:
        if await self._index.adopt_handover():
            log.info("index_swapped_for_rebuild")

    @mode.Service.task
    async def _maintain(self) -> None:
        await self._every(self._interval, self._optimize_when_due, "index_optimize_failed")

    @mode.Service.task
    async def _handover(self) -> None:
        """Answer ``tickerwire reindex`` promptly (one small file read a second)."""
        await self._every(self._handover_poll, self._adopt_handover, "index_handover_failed")
