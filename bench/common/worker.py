"""Running the real worker in-process: a private broker, bench settings and resources, the worker.

:class:`InProcessWorker` builds the faust app with :func:`tickerwire.stages.app.build_app` and runs
it in the current event loop (what ``tickerwire up --no-http`` runs, minus the signals).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from common.corpus import DEFAULT_CORPUS, KAFKA_LIBS, Passage, raw_document
from common.instruments import StageTimer, TimedEmbedder, TimedIndex
from common.report import bounded, log, write_json
from common.zero_embedder import ZeroEmbedder
from tickerwire.adapters.index_factory import open_index
from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs
from tickerwire.core.logging import configure_logging
from tickerwire.core.ports import (
    Embedder,
)
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings, load_settings
from tickerwire.localbroker import LocalBroker, free_loopback_ports
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.produce.producer import DocumentProducer
from tickerwire.runtime import Resources, chunker_for, make_handlers
from tickerwire.stages.app import ALL_STAGES, Handler, StageDeps, StageName, build_app
from tickerwire.stages.preprocess import prepare


@contextlib.asynccontextmanager
async def private_broker(
    workdir: Path, *, heap: str = "512m", partitions: int = 3
) -> AsyncIterator[LocalBroker]:
    """A fresh single-node KRaft broker with tickerwire's topics; stopped (by its pid) on exit."""
    port, controller_port = free_loopback_ports(2)
    broker = LocalBroker(
        port,
        workdir / "kafka",
        KAFKA_LIBS,
        heap,
        controller_port=controller_port,
        partitions=partitions,
    )
    started = time.perf_counter()
    result = await asyncio.to_thread(broker.up, 180.0)
    log(
        f"kafka broker pid {result.status.pid} on {broker.bootstrap} "
        f"({time.perf_counter() - started:.1f}s)"
    )
    try:
        await ensure_topics(broker.bootstrap, load_topic_specs(), partitions=partitions)
        yield broker
    finally:
        # LocalBroker.down stops exactly the pid it recorded in its own pid file.
        await asyncio.to_thread(broker.down, 30.0)
        log(f"kafka broker pid {result.status.pid} stopped")


class InProcessWorker:
    """The tickerwire faust app (all stages) running in this event loop.

    ``tickerwire up --no-http`` runs the same ``build_app(StageDeps(...))`` with the same
    ``make_handlers``; here the handlers are wrapped by a :class:`StageTimer` and the app is
    started with ``app.start()`` instead of a signal-handling ``faust.Worker``.
    """

    def __init__(
        self,
        settings: Settings,
        res: Resources,
        *,
        stages: tuple[StageName, ...] = ALL_STAGES,
        timer: StageTimer | None = None,
    ) -> None:
        self.settings = settings
        self.res = res
        self.stages = stages
        self.timer = timer or StageTimer()
        self.app: faust.App | None = None
        self.started_at: float | None = None
        self.ready_at: float | None = None

    def _factory(self) -> Callable[[faust.App, Any], dict[StageName, Handler]]:
        inner = make_handlers(self.res, self.stages)

        def factory(app: faust.App, table: Any) -> dict[StageName, Handler]:
            handlers: dict[StageName, Handler] = inner(app, table)
            return {name: self.timer.wrap(name, h) for name, h in handlers.items()}

        return factory

    async def start(self, limit_s: float = 120.0) -> None:
        app = build_app(
            StageDeps(
                settings=self.settings,
                stages=self.stages,
                make_handlers=self._factory(),
                app_id=self.settings.app_id,
            )
        )
        ready = asyncio.Event()

        async def on_ready() -> None:
            ready.set()

        app.on_startup_finished = on_ready
        app.in_worker = True
        self.app = app
        self.started_at = time.perf_counter()
        await app.start()
        await asyncio.wait_for(ready.wait(), limit_s)
        self.ready_at = time.perf_counter()

    async def stop(self, limit_s: float = 60.0) -> None:
        if self.app is None:
            return
        try:
            await asyncio.wait_for(self.app.stop(), limit_s)
        except TimeoutError:
            log(f"faust app did not stop within {limit_s}s")
        self.app = None


def bench_settings(bootstrap: str, workdir: Path, app_id: str, log_level: str) -> Settings:
    return load_settings(
        kafka_bootstrap=bootstrap,
        data_dir=workdir / "data",
        app_id=app_id,
        log_level=log_level,
        log_format="json",
    )


async def open_bench_resources(settings: Settings, embedder: Embedder) -> Resources:
    index = TimedIndex(open_index(settings, embedder.dim))
    await index.ensure_collection(embedder.dim)
    return Resources(settings=settings, embedder=embedder, sparse=BM25Encoder(), index=index)


@dataclass
class BenchSession:
    """What every pipeline bench runs on: a private broker, settings and resources."""

    broker: Any
    settings: Settings
    res: Resources
    embedder: TimedEmbedder
    index: TimedIndex


@asynccontextmanager
async def bench_session(
    name: str, log_level: str, make_embedder: Callable[[Settings], TimedEmbedder]
) -> AsyncIterator[BenchSession]:
    """A private broker in a temp dir, bench settings and opened resources; all closed after."""
    with tempfile.TemporaryDirectory(prefix=f"tw-bench-{name}-") as tmp:
        workdir = Path(tmp)
        async with private_broker(workdir) as broker:
            settings = bench_settings(
                broker.bootstrap, workdir, f"bench-{name}-{os.getpid()}", log_level
            )
            configure_logging(fmt="json", level=log_level, service=True)
            embedder = make_embedder(settings)
            res = await open_bench_resources(settings, embedder)
            assert isinstance(res.index, TimedIndex)
            try:
                yield BenchSession(broker, settings, res, embedder, res.index)
            finally:
                await res.aclose()


def zero_session(name: str, log_level: str) -> AbstractAsyncContextManager[BenchSession]:
    """:func:`bench_session` with the zero-cost :class:`ZeroEmbedder` of the framework benches."""
    return bench_session(name, log_level, lambda settings: TimedEmbedder(ZeroEmbedder()))


def embed_texts_of(
    docs: Sequence[dict[str, Any]], settings: Settings, emb: Embedder
) -> tuple[list[str], list[int]]:
    """The exact ``embed_text`` strings preprocess will send to the embedder, and chunks per doc."""
    chunker = chunker_for(settings, emb)
    texts: list[str] = []
    per_doc: list[int] = []
    for d in docs:
        chunks = prepare(RawDocument.model_validate(d), chunker).chunks
        texts.extend(c.embed_text for c in chunks)
        per_doc.append(len(chunks))
    return texts, per_doc


async def embed_alone(embedder: Embedder, texts: Sequence[str], batch: int) -> dict[str, Any]:
    """The embedder alone over ``texts`` in batches of ``batch``: chunks/s and a time series."""
    started = time.perf_counter()
    series: list[tuple[float, int]] = []
    done = 0
    for i in range(0, len(texts), batch):
        part = texts[i : i + batch]
        await embedder.embed_documents(part)
        done += len(part)
        series.append((time.perf_counter() - started, done))
    seconds = time.perf_counter() - started
    return {
        "chunks": len(texts),
        "seconds": round(seconds, 3),
        "chunks_per_s": round(len(texts) / seconds, 2),
        "series": [(round(t, 3), n) for t, n in series],
    }


async def produce(bootstrap: str, docs: Sequence[dict[str, Any]], slice_size: int = 2000) -> float:
    """Send ``docs`` (all in flight per slice, acks=all); return seconds taken."""
    started = time.perf_counter()
    async with DocumentProducer(bootstrap, client_id="bench-producer") as producer:
        for i in range(0, len(docs), slice_size):
            await producer.send_batch(docs[i : i + slice_size])
    return time.perf_counter() - started


async def produce_before_worker(
    settings: Settings, passages: Sequence[Passage], prefix: str, limit_s: float
) -> tuple[list[dict[str, Any]], float]:
    """Raw documents ``<prefix>-NNNNNN`` of ``passages``, all produced before a worker starts;
    return them and the seconds producing took."""
    docs = [raw_document(f"{prefix}-{i:06d}", p) for i, p in enumerate(passages)]
    mean_words = sum(p.words for p in passages) / len(passages) if passages else float("nan")
    log(f"producing {len(docs)} docs (mean {mean_words:.0f} words) before the worker")
    produce_s = await bounded(produce(settings.kafka_bootstrap, docs), limit_s, "produce")
    log(f"  produced in {produce_s:.1f}s ({len(docs) / produce_s:.0f} docs/s)")
    return docs, float(produce_s)


def pipeline_parser(description: str, *, docs: int, words: int) -> argparse.ArgumentParser:
    """The options every pipeline benchmark takes (``--docs``, ``--words``, ``--corpus``...)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--docs", type=int, default=docs, help=f"documents (default {docs})")
    parser.add_argument(
        "--words",
        type=int,
        default=words,
        help=f"words per document; 0 = one corpus row, one chunk each (default {words})",
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of each phase (s)")
    parser.add_argument("--log-level", default="warning", choices=["info", "warning"])
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    return parser


def result_name(benchmark: str, tag: str) -> str:
    """``<benchmark>`` or ``<benchmark>_<tag>``: the name of the JSON (and PNG) in bench/results."""
    return f"{benchmark}_{tag}" if tag else benchmark


def run_benchmark(
    benchmark: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    show: Callable[[dict[str, Any]], None],
    *,
    before_write: Callable[[str, dict[str, Any]], None] | None = None,
) -> None:
    """Run one benchmark, print its table, and write ``<benchmark>[_<tag>].json`` to the results."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = result_name(benchmark, args.tag)
    result = asyncio.run(run(args))
    show(result)
    if before_write is not None:
        before_write(name, result)
    print(f"\nwrote {write_json(name, result)}")
