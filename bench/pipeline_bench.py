"""Pipeline throughput benchmarks: efficiency against the embedder alone, and the framework ceiling.

Both run the real worker (``build_app`` + ``make_handlers``, all three stages in one process, as
``tickerwire up --no-http`` does) in this process's event loop, against a private Kafka broker
started on free loopback ports in a temp dir, with a Qdrant Edge index in the same temp dir.

``efficiency``
    ~200-word passages packed from TAT-QA (one or two chunks per document). In one run, with the
    same model and batch size (``settings.embed_batch_size``) and the same ``embed_text``
    strings: the embedder alone (before and after the pipeline), then N documents produced in
    a burst to the warmed-up worker, timed from the first produce to the last commit applied in
    the index. Efficiency = pipeline chunks/s ÷ embedder-alone chunks/s (target ≥ 0.90).

``ceiling``
    A zero-cost embedder (defined here, never in the package) and, by default, short documents
    (one TAT-QA row each, one chunk: the worst case, every chunk pays a whole document's
    records). ``--words N`` packs documents of about N words instead (filing-sized documents
    have many chunks each). N documents are produced to the raw topic first; the worker is then
    started and timed from its first preprocess batch to the last commit applied
    (target ≥ 2,000 chunks/s). ``--profile`` runs the worker under cProfile (event-loop thread).

``floor``
    The same worker, broker and raw documents as ``ceiling``, but the stages do no work:
    preprocess turns each raw record into ``--chunks-per-doc`` chunk-sized payloads and a
    commit-sized one, embed turns each chunk payload into a vector-sized one (sizes of real
    records of the one-chunk documents: 1.2 KB and 10 KB) and passes the commit on, index only
    counts. What is left is the framework itself (faust and aiokafka, the sequencer, batching,
    acknowledged sends): the most any stage code on top of it could reach.

Results go to ``bench/results/pipeline_efficiency.json`` / ``pipeline_ceiling.json`` /
``pipeline_floor.json`` (+ PNG)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py efficiency --docs 600
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py ceiling --docs 20000
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py ceiling --docs 600 --words 2000
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py floor --docs 3000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import os
import pstats
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from common import (
    DEFAULT_CORPUS,
    REPO_ROOT,
    RESULTS_DIR,
    CpuMeter,
    InProcessWorker,
    Passage,
    StageTimer,
    TimedEmbedder,
    TimedIndex,
    bounded,
    environment,
    histogram_snapshot,
    load_passages,
    log,
    private_broker,
    raw_document,
    sample,
    table,
    write_json,
)
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.embed_local import ModelFiles
from tickerwire.adapters.index_factory import open_index
from tickerwire.core.logging import configure_logging
from tickerwire.core.ports import Embedder, Splitter
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings, load_settings
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.produce.producer import DocumentProducer
from tickerwire.runtime import Resources, chunker_for
from tickerwire.stages.app import FaustSender, Handler, StageName
from tickerwire.stages.base import CHUNKS_TOPIC, VECTORS_TOPIC, InMsg, OutMsg
from tickerwire.stages.preprocess import prepare


class ZeroEmbedder:
    """A zero-cost Embedder for the framework ceiling: vectors from a fixed pool, instantly.

    Token counting and splitting use the real MiniLM tokenizer, so preprocess does its real work.
    """

    def __init__(self, dim: int = 384, pool: int = 64) -> None:
        self._tok = Tokenizer.from_file(str(ModelFiles.installed().tokenizer))
        self._tok.no_truncation()
        self._tok.no_padding()
        rng = np.random.default_rng(7)
        vecs = rng.standard_normal((pool, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        self._pool: list[list[float]] = vecs.tolist()
        self._dim = dim

    @property
    def name(self) -> str:
        return "zero-cost-bench"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return 254

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        splitter: Splitter = TextSplitter.from_huggingface_tokenizer(self._tok, capacity, overlap)
        return splitter

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        n = len(self._pool)
        return [self._pool[len(t) % n] for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self._pool[len(text) % len(self._pool)]

    async def aclose(self) -> None:
        return None


# --- shared set-up --------------------------------------------------------------------------


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


# --- efficiency -----------------------------------------------------------------------------


async def efficiency(args: argparse.Namespace) -> dict[str, Any]:
    passages = load_passages(args.corpus, args.docs + args.warmup, target_words=args.words)

    def make(settings: Settings) -> TimedEmbedder:
        return TimedEmbedder(open_embedder(settings))

    async with bench_session("eff", args.log_level, make) as b:
        meter = CpuMeter(b.broker.status().pid)
        return await _efficiency_run(args, b.settings, b.res, b.embedder, b.index, passages, meter)


async def _efficiency_run(
    args: argparse.Namespace,
    settings: Settings,
    res: Resources,
    embedder: TimedEmbedder,
    index: TimedIndex,
    passages: list[Passage],
    meter: CpuMeter,
) -> dict[str, Any]:
    batch = settings.embed_batch_size
    warm_docs = [raw_document(f"warm-{i:03d}", p) for i, p in enumerate(passages[: args.warmup])]
    docs = [raw_document(f"eff-{i:05d}", p) for i, p in enumerate(passages[args.warmup :])]
    prep0 = time.perf_counter()
    texts, chunks_per_doc = embed_texts_of(docs, settings, embedder)
    prep_s = time.perf_counter() - prep0
    words = [p.words for p in passages[args.warmup :]]
    log(
        f"{len(docs)} docs, {len(texts)} chunks (mean {np.mean(words):.0f} words/doc, "
        f"{len(texts) / len(docs):.2f} chunks/doc); embed batch {batch}"
    )

    # Warm the model up (first ORT runs allocate), then the embedder alone, run 1.
    await embedder.embed_documents(texts[:batch])
    log("embedder alone, run 1 ...")
    meter.start()
    alone1 = await bounded(embed_alone(embedder, texts, batch), args.timeout, "embedder alone")
    cpu_alone1 = meter.stop()
    log(f"  {alone1['chunks_per_s']} chunks/s")

    worker = InProcessWorker(settings, res)
    log("starting the worker ...")
    await bounded(worker.start(), 180, "worker start")
    try:
        log(f"worker ready in {worker.ready_at - worker.started_at:.1f}s; warm-up docs ...")  # type: ignore[operator]
        await produce(settings.kafka_bootstrap, warm_docs)
        if not await index.wait_for({d["doc_id"] for d in warm_docs}, 180):
            raise TimeoutError("warm-up documents were not indexed within 180s")
        await asyncio.sleep(1.0)
        worker.timer.reset()
        embedder.reset()
        upserted0 = index.upserted
        commits0 = sample("tickerwire_index_commits_applied_total", {"backend": "edge"})
        batch_sum0 = sample("tickerwire_embed_batch_size_sum", {"embedder": embedder.name})
        batch_cnt0 = sample("tickerwire_embed_batch_size_count", {"embedder": embedder.name})

        log(f"pipeline: producing {len(docs)} docs ...")
        t0 = time.time()
        p0 = time.perf_counter()
        meter.start()
        produce_s = await produce(settings.kafka_bootstrap, docs)
        ids = {d["doc_id"] for d in docs}
        complete = await index.wait_for(ids, args.timeout)
        cpu_pipe = meter.stop()
        done = [index.commit_applied[i] for i in ids if i in index.commit_applied]
        t_end = max(done) if done else time.time()
        wall = t_end - t0
        p_end = p0 + wall
        stages = worker.timer.as_dict()
        busy, calls, embedded = embedder.busy(p0, p_end)
        upserted = index.upserted - upserted0
        commits = sample("tickerwire_index_commits_applied_total", {"backend": "edge"}) - commits0
        batch_sum = (
            sample("tickerwire_embed_batch_size_sum", {"embedder": embedder.name}) - batch_sum0
        )
        batch_cnt = (
            sample("tickerwire_embed_batch_size_count", {"embedder": embedder.name}) - batch_cnt0
        )
        series_pipe = _pipeline_series(docs, chunks_per_doc, index.commit_applied, t0)
        calls_detail = [(round(s - p0, 3), round(e - s, 4), n) for s, e, n in embedder.calls]
    finally:
        log("stopping the worker ...")
        await worker.stop()

    log("embedder alone, run 2 ...")
    meter.start()
    alone2 = await bounded(embed_alone(embedder, texts, batch), args.timeout, "embedder alone")
    cpu_alone2 = meter.stop()
    log(f"  {alone2['chunks_per_s']} chunks/s")

    chunks = len(texts)
    pipe_rate = chunks / wall
    alone_rate = (alone1["chunks_per_s"] + alone2["chunks_per_s"]) / 2
    alone_per_chunk = 1 / alone_rate
    in_pipe_per_chunk = busy / embedded if embedded else float("nan")
    result: dict[str, Any] = {
        "benchmark": "pipeline_efficiency",
        "target": ">= 0.90",
        "environment": environment(),
        "params": {
            "docs": len(docs),
            "chunks": chunks,
            "mean_words_per_doc": round(float(np.mean(words)), 1),
            "chunks_per_doc": round(chunks / len(docs), 3),
            "embed_batch_size": batch,
            "embed_batch_window_ms": settings.embed_batch_window_ms,
            "kafka_partitions": settings.kafka_partitions,
            "embedder": embedder.name,
            "log_level": args.log_level,
            "corpus": str(args.corpus),
            "prepare_alone_ms_per_doc": round(1000 * prep_s / len(docs), 2),
        },
        "complete": complete,
        "indexed_docs": len(done),
        "points_upserted": upserted,
        "commits_applied": commits,
        "pipeline": {
            "wall_s": round(wall, 3),
            "produce_s": round(produce_s, 3),
            "chunks_per_s": round(pipe_rate, 2),
            "docs_per_s": round(len(done) / wall, 2),
        },
        "embedder_alone": {
            "run1_chunks_per_s": alone1["chunks_per_s"],
            "run2_chunks_per_s": alone2["chunks_per_s"],
            "mean_chunks_per_s": round(alone_rate, 2),
        },
        "efficiency": round(pipe_rate / alone_rate, 3),
        "efficiency_vs_run1": round(pipe_rate / alone1["chunks_per_s"], 3),
        "efficiency_vs_run2": round(pipe_rate / alone2["chunks_per_s"], 3),
        "diagnosis": {
            # Where the gap comes from: the embedder idle inside the window, or each embedding
            # call being slower than alone (CPU shared with preprocess/index/broker).
            "embedder_busy_s": round(busy, 3),
            "embedder_busy_fraction": round(busy / wall, 3),
            "embed_calls": calls,
            "embedded_texts": embedded,
            "mean_embed_batch": round(embedded / calls, 2) if calls else 0,
            "mean_embed_batch_prometheus": round(batch_sum / batch_cnt, 2) if batch_cnt else 0,
            "embed_batch_observations_prometheus": batch_cnt,
            "ms_per_chunk_in_pipeline": round(in_pipe_per_chunk * 1000, 2),
            "ms_per_chunk_alone": round(alone_per_chunk * 1000, 2),
            "slowdown_in_pipeline": round(in_pipe_per_chunk / alone_per_chunk, 3),
            "time_to_first_embed_s": round(embedder.calls[0][0] - p0, 3)
            if embedder.calls
            else None,
            "stages": stages,
            "index_upsert_s": round(index.upsert_seconds, 3),
            "index_delete_s": round(index.delete_seconds, 3),
        },
        "cpu": {
            # Contention-robust view: CPU seconds per chunk (this process; the broker separately).
            "alone_run1": cpu_alone1,
            "pipeline": cpu_pipe,
            "alone_run2": cpu_alone2,
            "process_cpu_ms_per_chunk_alone": round(
                500 * (cpu_alone1["process_cpu_s"] + cpu_alone2["process_cpu_s"]) / chunks, 2
            ),
            "process_cpu_ms_per_chunk_pipeline": round(
                1000 * cpu_pipe["process_cpu_s"] / chunks, 2
            ),
            "broker_cpu_ms_per_chunk_pipeline": round(1000 * cpu_pipe["broker_cpu_s"] / chunks, 2),
        },
        "embed_calls": calls_detail,
        "series": {
            "pipeline": series_pipe,
            "alone_run1": alone1["series"],
            "alone_run2": alone2["series"],
        },
    }
    return result


def _pipeline_series(
    docs: Sequence[dict[str, Any]],
    chunks_per_doc: Sequence[int],
    applied: dict[str, float],
    t0: float,
) -> list[tuple[float, int]]:
    events = sorted(
        (applied[d["doc_id"]] - t0, n)
        for d, n in zip(docs, chunks_per_doc, strict=True)
        if d["doc_id"] in applied
    )
    out: list[tuple[float, int]] = []
    total = 0
    for t, n in events:
        total += n
        out.append((round(t, 3), total))
    return out


def plot_efficiency(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label in (
        ("alone_run1", "embedder alone (run 1)"),
        ("alone_run2", "embedder alone (run 2)"),
        ("pipeline", "pipeline: produced → committed in index"),
    ):
        series = result["series"][key]
        if series:
            xs = [0.0] + [t for t, _ in series]
            ys = [0] + [n for _, n in series]
            ax.plot(xs, ys, label=label, drawstyle="steps-post" if key == "pipeline" else None)
    ax.set_xlabel("seconds")
    ax.set_ylabel("chunks")
    ax.set_title(
        f"Pipeline efficiency {result['efficiency']:.2f} "
        f"({result['pipeline']['chunks_per_s']:.1f} vs "
        f"{result['embedder_alone']['mean_chunks_per_s']:.1f} chunks/s)"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_efficiency(r: dict[str, Any]) -> None:
    d = r["diagnosis"]
    rows: list[tuple[str, Any]] = [
        ("documents / chunks", f"{r['params']['docs']} / {r['params']['chunks']}"),
        (
            "words/doc, chunks/doc",
            f"{r['params']['mean_words_per_doc']}, {r['params']['chunks_per_doc']}",
        ),
        (
            "embed batch size / window",
            f"{r['params']['embed_batch_size']} / {r['params']['embed_batch_window_ms']} ms",
        ),
        ("complete", f"{r['complete']} ({r['indexed_docs']} docs, {r['points_upserted']} points)"),
        ("embedder alone run 1", f"{r['embedder_alone']['run1_chunks_per_s']} chunks/s"),
        ("embedder alone run 2", f"{r['embedder_alone']['run2_chunks_per_s']} chunks/s"),
        (
            "pipeline end to end",
            f"{r['pipeline']['chunks_per_s']} chunks/s "
            f"({r['pipeline']['wall_s']} s, produce {r['pipeline']['produce_s']} s)",
        ),
        ("EFFICIENCY", f"{r['efficiency']}  (target {r['target']})"),
        ("embedder busy fraction", d["embedder_busy_fraction"]),
        ("embed calls / mean batch", f"{d['embed_calls']} / {d['mean_embed_batch']}"),
        (
            "ms/chunk pipeline vs alone",
            f"{d['ms_per_chunk_in_pipeline']} vs "
            f"{d['ms_per_chunk_alone']} (x{d['slowdown_in_pipeline']})",
        ),
        ("time to first embed call", f"{d['time_to_first_embed_s']} s"),
        (
            "CPU ms/chunk alone vs pipeline",
            f"{r['cpu']['process_cpu_ms_per_chunk_alone']} vs "
            f"{r['cpu']['process_cpu_ms_per_chunk_pipeline']} "
            f"(+ broker {r['cpu']['broker_cpu_ms_per_chunk_pipeline']})",
        ),
        (
            "load avg 1m (alone1/pipe/alone2)",
            f"{r['cpu']['alone_run1']['loadavg_1m_at_end']} / "
            f"{r['cpu']['pipeline']['loadavg_1m_at_end']} / "
            f"{r['cpu']['alone_run2']['loadavg_1m_at_end']}",
        ),
    ]
    for name, st in d["stages"].items():
        rows.append(
            (
                f"stage {name}",
                f"{st['calls']} batches, {st['records']} records, "
                f"busy {st['busy_s']} s, mean batch {st['mean_batch']}",
            )
        )
    print(table(rows, "Pipeline efficiency (end-to-end ÷ embedder alone)"))


# --- ceiling --------------------------------------------------------------------------------


async def ceiling(args: argparse.Namespace) -> dict[str, Any]:
    passages = load_passages(args.corpus, args.docs, target_words=args.words)

    def make(settings: Settings) -> TimedEmbedder:
        return TimedEmbedder(ZeroEmbedder())

    async with bench_session("ceil", args.log_level, make) as b:
        return await _ceiling_run(args, b.settings, b.res, b.embedder, b.index, passages)


async def _ceiling_run(
    args: argparse.Namespace,
    settings: Settings,
    res: Resources,
    embedder: TimedEmbedder,
    index: TimedIndex,
    passages: list[Passage],
) -> dict[str, Any]:
    docs = [raw_document(f"ceil-{i:06d}", p) for i, p in enumerate(passages)]
    words = [p.words for p in passages]
    log(f"producing {len(docs)} docs (mean {np.mean(words):.0f} words) before the worker")
    produce_s = await bounded(produce(settings.kafka_bootstrap, docs), args.timeout, "produce")
    log(f"  produced in {produce_s:.1f}s ({len(docs) / produce_s:.0f} docs/s)")

    profiler: Any = None
    if args.profile:
        # The event-loop thread (faust, all stage handlers, the sparse encoder, record parsing and
        # serialisation) is what cProfile sees; preprocess's to_thread work and Edge's executor
        # are in other threads and show up as waits.
        profiler = cProfile.Profile()
    timer = StageTimer()
    worker = InProcessWorker(settings, res, timer=timer)
    if profiler is not None:
        profiler.enable()
    w0 = time.time()
    await bounded(worker.start(), 180, "worker start")
    try:
        ids = {d["doc_id"] for d in docs}
        complete = await index.wait_for(ids, args.timeout)
        done = [index.commit_applied[i] for i in ids if i in index.commit_applied]
        t_end_wall = max(done) if done else time.time()
        if profiler is not None:
            profiler.disable()
        # Convert the wall-clock end to the perf_counter clock of the stage timer.
        p_end = time.perf_counter() - (time.time() - t_end_wall)
        first = timer.stats["preprocess"].first_start if "preprocess" in timer.stats else None
        stages = timer.as_dict()
    finally:
        await worker.stop()

    chunks = index.upserted
    steady = p_end - first if first is not None else float("nan")
    _, calls, embedded = embedder.busy()
    result: dict[str, Any] = {
        "benchmark": "pipeline_ceiling",
        "target": ">= 2000 chunks/s",
        "environment": environment(),
        "params": {
            "docs": len(docs),
            "mean_words_per_doc": round(float(np.mean(words)), 1),
            "embedder": "ZeroEmbedder (bench/pipeline_bench.py): constant vectors, real tokenizer",
            "embed_batch_size": settings.embed_batch_size,
            "index_batch_size": settings.index_batch_size,
            "kafka_partitions": settings.kafka_partitions,
            "log_level": args.log_level,
            "profile": profiler is not None,
        },
        "complete": complete,
        "indexed_docs": len(done),
        "chunks": chunks,
        "produce": {"seconds": round(produce_s, 3), "docs_per_s": round(len(docs) / produce_s)},
        "worker_ready_s": round(worker.ready_at - worker.started_at, 3)  # type: ignore[operator]
        if worker.ready_at
        else None,
        "seconds_first_batch_to_last_commit": round(steady, 3),
        "seconds_worker_start_to_last_commit": round(t_end_wall - w0, 3),
        "chunks_per_s": round(chunks / steady, 1),
        "docs_per_s": round(len(done) / steady, 1),
        "chunks_per_s_incl_startup": round(chunks / (t_end_wall - w0), 1),
        "stages": stages,
        "embed_calls": calls,
        "embedded_texts": embedded,
        "index": {
            "upsert_calls": index.upsert_calls,
            "upsert_s": round(index.upsert_seconds, 3),
            "delete_calls": index.delete_calls,
            "delete_s": round(index.delete_seconds, 3),
        },
        "freshness_histogram": histogram_snapshot("tickerwire_freshness_seconds"),
    }
    if profiler is not None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        txt = RESULTS_DIR / "pipeline_ceiling_profile.txt"
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        out.write("# cProfile of the event-loop thread, sorted by cumulative time\n")
        stats.sort_stats("cumulative").print_stats(45)
        out.write("\n# sorted by own time\n")
        stats.sort_stats("tottime").print_stats(30)
        txt.write_text(out.getvalue(), encoding="utf-8")
        result["profile_file"] = str(txt.relative_to(REPO_ROOT))
    return result


def print_ceiling(r: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [
        ("documents (words/doc)", f"{r['params']['docs']} ({r['params']['mean_words_per_doc']})"),
        ("complete", f"{r['complete']} ({r['indexed_docs']} docs, {r['chunks']} points)"),
        ("producer (before worker)", f"{r['produce']['docs_per_s']} docs/s"),
        ("worker ready after", f"{r['worker_ready_s']} s"),
        ("first batch → last commit", f"{r['seconds_first_batch_to_last_commit']} s"),
        ("CHUNKS/S", f"{r['chunks_per_s']}  (target {r['target']})"),
        ("chunks/s incl. startup", r["chunks_per_s_incl_startup"]),
        ("embed calls / texts", f"{r['embed_calls']} / {r['embedded_texts']}"),
        ("index upserts", f"{r['index']['upsert_calls']} calls, {r['index']['upsert_s']} s"),
        ("index commit deletes", f"{r['index']['delete_calls']} calls, {r['index']['delete_s']} s"),
    ]
    for name, st in r["stages"].items():
        rows.append(
            (
                f"stage {name}",
                f"{st['calls']} batches, {st['records']} records, "
                f"busy {st['busy_s']} s, mean batch {st['mean_batch']}",
            )
        )
    print(table(rows, "Framework ceiling (zero-cost embedder)"))


# --- floor: the framework without stage work --------------------------------------------------


class ForwardingWorker(InProcessWorker):
    """The worker with stages that only move records: what the framework alone costs."""

    #: Payload sizes of real records for the one-chunk documents (chunk/v1, vector/v1, commit/v1).
    CHUNK = b"c" * 1200
    VECTOR = b"v" * 10_000
    COMMIT = b"m" * 200

    def __init__(self, settings: Settings, res: Resources, *, docs: int, chunks: int) -> None:
        super().__init__(settings, res)
        self.chunks = chunks
        self.expect = docs * (chunks + 1)
        self.arrived = 0
        self.last_arrival = 0.0
        self.all_arrived = asyncio.Event()

    def _factory(self) -> Callable[[Any, Any], dict[StageName, Handler]]:
        def factory(app: Any, table: Any) -> dict[StageName, Handler]:
            sender = FaustSender(app)
            per_doc = [self.CHUNK] * self.chunks + [self.COMMIT]

            async def preprocess(batch: Sequence[InMsg]) -> None:
                await sender.send_all(
                    [OutMsg(CHUNKS_TOPIC, m.key or b"", value) for m in batch for value in per_doc]
                )

            async def embed(batch: Sequence[InMsg]) -> None:
                await sender.send_all(
                    [
                        OutMsg(
                            VECTORS_TOPIC,
                            m.key or b"",
                            self.VECTOR if m.value[:1] == b"c" else m.value,
                        )
                        for m in batch
                    ]
                )

            async def index(batch: Sequence[InMsg]) -> None:
                self.arrived += len(batch)
                self.last_arrival = time.perf_counter()
                if self.arrived >= self.expect:
                    self.all_arrived.set()

            handlers: dict[StageName, Handler] = {
                "preprocess": preprocess,
                "embed": embed,
                "index": index,
            }
            return {name: self.timer.wrap(name, h) for name, h in handlers.items()}

        return factory


async def floor(args: argparse.Namespace) -> dict[str, Any]:
    passages = load_passages(args.corpus, args.docs, target_words=args.words)

    def make(settings: Settings) -> TimedEmbedder:
        return TimedEmbedder(ZeroEmbedder())

    async with bench_session("floor", args.log_level, make) as b:
        docs = [raw_document(f"floor-{i:06d}", p) for i, p in enumerate(passages)]
        log(f"producing {len(docs)} docs before the worker")
        produce_s = await bounded(
            produce(b.settings.kafka_bootstrap, docs), args.timeout, "produce"
        )
        worker = ForwardingWorker(b.settings, b.res, docs=len(docs), chunks=args.chunks_per_doc)
        meter = CpuMeter(b.broker.status().pid)
        meter.start()
        await bounded(worker.start(), 180, "worker start")
        try:
            await bounded(worker.all_arrived.wait(), args.timeout, "all records forwarded")
            cpu = meter.stop()
            first = worker.timer.stats["preprocess"].first_start
            stages = worker.timer.as_dict()
        finally:
            await worker.stop()
    assert first is not None
    steady = worker.last_arrival - first
    return {
        "benchmark": "pipeline_floor",
        "target": "none: the bound for ceiling's >= 2000 chunks/s",
        "environment": environment(),
        "params": {
            "docs": len(docs),
            "chunks_per_doc": args.chunks_per_doc,
            "payload_bytes": {
                "chunk": len(ForwardingWorker.CHUNK),
                "vector": len(ForwardingWorker.VECTOR),
                "commit": len(ForwardingWorker.COMMIT),
            },
            "kafka_partitions": b.settings.kafka_partitions,
            "log_level": args.log_level,
        },
        "produce": {"seconds": round(produce_s, 3), "docs_per_s": round(len(docs) / produce_s)},
        "seconds_first_batch_to_last_record": round(steady, 3),
        "docs_per_s": round(len(docs) / steady, 1),
        "chunks_per_s": round(len(docs) * args.chunks_per_doc / steady, 1),
        "records_consumed_per_s": round(len(docs) * (1 + 2 * (args.chunks_per_doc + 1)) / steady),
        "cpu_from_worker_start": cpu,
        "stages": stages,
    }


def print_floor(r: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [
        ("documents × chunks", f"{r['params']['docs']} × {r['params']['chunks_per_doc']}"),
        ("first batch → last record", f"{r['seconds_first_batch_to_last_record']} s"),
        ("CHUNKS/S", r["chunks_per_s"]),
        ("docs/s", r["docs_per_s"]),
        ("records consumed/s", r["records_consumed_per_s"]),
        (
            "worker / broker CPU",
            f"{r['cpu_from_worker_start']['process_cpu_s']} / "
            f"{r['cpu_from_worker_start']['broker_cpu_s']} s",
        ),
    ]
    print(table(rows, "Framework floor (stages that only forward records)"))


# --- main -----------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("which", choices=["efficiency", "ceiling", "floor"])
    parser.add_argument("--docs", type=int, default=None, help="documents (600 / 20000)")
    parser.add_argument(
        "--words",
        type=int,
        default=None,
        help="words per document (efficiency: 200; ceiling: 0 = one corpus row, one chunk each)",
    )
    parser.add_argument("--warmup", type=int, default=8, help="warm-up documents (efficiency)")
    parser.add_argument(
        "--chunks-per-doc", type=int, default=1, help="floor: chunk records per document"
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of each phase (s)")
    parser.add_argument("--log-level", default="warning", choices=["info", "warning"])
    parser.add_argument("--profile", action="store_true", help="ceiling: cProfile the worker")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = f"pipeline_{args.which}{'_' + args.tag if args.tag else ''}"
    if args.which == "efficiency":
        args.docs = args.docs or 600
        args.words = 200 if args.words is None else args.words
        result = asyncio.run(efficiency(args))
        result["params"]["corpus_sha256_12"] = _digest(args.corpus)
        print_efficiency(result)
        png = RESULTS_DIR / f"{name}.png"
        plot_efficiency(result, png)
        result["plot"] = png.name
    elif args.which == "ceiling":
        args.docs = args.docs or 20000
        args.words = 0 if args.words is None else args.words
        result = asyncio.run(ceiling(args))
        print_ceiling(result)
    else:
        args.docs = args.docs or 3000
        args.words = 0 if args.words is None else args.words
        result = asyncio.run(floor(args))
        print_floor(result)
    path = write_json(name, result)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
