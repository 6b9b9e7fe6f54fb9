"""Freshness: produced → searchable latency per document at a steady half-capacity load.

Runs the real worker (all three stages in this process's event loop, exactly the faust app of
``tickerwire up --no-http``) against a private Kafka broker on free loopback ports and a Qdrant
Edge index, both in a temp dir. First it measures the embedder's capacity (chunks/s, the same
model and ``embed_batch_size``, on the benchmark's own chunk texts), then produces ~200-word
TAT-QA passages at a steady rate of ``--load`` (0.5) × that capacity for ``--duration`` (60) s.

A document's latency is from the moment it was handed to the producer to the moment the index
stage finished applying its commit (after which the document is searchable). The per-stage split
(raw→preprocessed→embedded→committed) comes from timing the stage handlers; the
``tickerwire_freshness_seconds`` histogram of the index stage is reported as a cross-check.
Writes ``bench/results/freshness.json`` and ``freshness.png``::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/freshness_bench.py --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from common import (
    DEFAULT_CORPUS,
    RESULTS_DIR,
    CpuMeter,
    InProcessWorker,
    StageTimer,
    TimedEmbedder,
    TimedIndex,
    bench_session,
    bounded,
    bucket_quantile,
    embed_alone,
    environment,
    histogram_snapshot,
    load_passages,
    log,
    percentile,
    produce,
    raw_document,
    table,
    write_json,
)
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings
from tickerwire.evaluation.load import search_load
from tickerwire.localbroker import free_loopback_ports
from tickerwire.produce.producer import DocumentProducer
from tickerwire.query.ask import OfflineAnswerer
from tickerwire.query.live import LiveDeps
from tickerwire.runtime import Resources, chunker_for, query_app
from tickerwire.stages.preprocess import prepare

FRESHNESS = "tickerwire_freshness_seconds"


def _delta_quantile(before: dict[str, float], after: dict[str, float], q: float) -> float:
    """Quantile (Prometheus interpolation) of the observations between two histogram snapshots."""
    buckets = sorted(
        (float(le), after[le] - before.get(le, 0.0)) for le in after if le not in ("sum", "count")
    )
    return bucket_quantile(buckets, q)


class ServedApi:
    """The query API over the benchmark's resources, served on a free loopback port in this
    event loop (as ``tickerwire up`` serves it beside the stages)."""

    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self._server = server
        self._task = asyncio.create_task(server.serve())
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task


async def serve_query_api(res: Resources) -> ServedApi:
    (port,) = free_loopback_ports(1)
    app = query_app(res, OfflineAnswerer(), LiveDeps())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    api = ServedApi(uvicorn.Server(config), port)
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        for _ in range(100):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return api
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the query API did not start")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    def make(settings: Settings) -> TimedEmbedder:
        return TimedEmbedder(open_embedder(settings))

    async with bench_session("fresh", args.log_level, make) as b:
        meter = CpuMeter(b.broker.status().pid)
        return await _run(args, b.settings, b.res, b.embedder, b.index, meter)


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    res: Resources,
    embedder: TimedEmbedder,
    index: TimedIndex,
    meter: CpuMeter,
) -> dict[str, Any]:
    batch = settings.embed_batch_size
    # Enough passages for the longest plausible run; only those produced are used.
    max_docs = int(args.max_rate * args.duration) + 1
    passages = load_passages(args.corpus, max_docs + args.warmup, target_words=args.words)
    chunker = chunker_for(settings, embedder)
    calib_docs = passages[args.warmup : args.warmup + 64]
    texts: list[str] = []
    for i, p in enumerate(calib_docs):
        doc = RawDocument.model_validate(raw_document(f"calib-{i}", p))
        texts.extend(c.embed_text for c in prepare(doc, chunker).chunks)
    chunks_per_doc = len(texts) / len(calib_docs)
    texts = texts[: args.calibrate_chunks]
    await embedder.embed_documents(texts[:8])  # warm-up
    calib = await bounded(embed_alone(embedder, texts, batch), 300, "capacity calibration")
    capacity = float(calib["chunks_per_s"])
    rate = args.rate or min(args.max_rate, args.load * capacity / chunks_per_doc)
    n_docs = max(1, int(rate * args.duration))
    log(
        f"embedder capacity {capacity:.1f} chunks/s, {chunks_per_doc:.2f} chunks/doc → "
        f"producing {rate:.2f} docs/s ({rate * chunks_per_doc:.1f} chunks/s) for {args.duration}s"
    )

    timer = StageTimer(track_docs=True)
    worker = InProcessWorker(settings, res, timer=timer)
    await bounded(worker.start(), 180, "worker start")
    try:
        warm = [raw_document(f"warm-{i:03d}", p) for i, p in enumerate(passages[: args.warmup])]
        await produce(settings.kafka_bootstrap, warm)
        if not await index.wait_for({d["doc_id"] for d in warm}, 180):
            raise TimeoutError("warm-up documents were not indexed within 180s")
        await asyncio.sleep(2.0)
        timer.reset()
        embedder.reset()
        hist0 = histogram_snapshot(FRESHNESS)

        docs = [
            raw_document(f"fresh-{i:05d}", p)
            for i, p in enumerate(passages[args.warmup : args.warmup + n_docs])
        ]
        sent_at: dict[str, float] = {}
        acks: list[asyncio.Task[Any]] = []
        lateness: list[float] = []
        api = await serve_query_api(res) if args.search_concurrency else None
        searching = (
            asyncio.create_task(
                search_load(
                    api.base_url,
                    args.duration,
                    concurrency=args.search_concurrency,
                    queries=[p.text.split(".")[0][:80] for p in passages[:50]],
                )
            )
            if api is not None
            else None
        )
        meter.start()
        async with DocumentProducer(settings.kafka_bootstrap, client_id="bench-fresh") as prod:
            t0 = time.time()
            p0 = time.perf_counter()
            for i, raw in enumerate(docs):
                due = p0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                lateness.append(max(0.0, time.perf_counter() - due))
                sent_at[raw["doc_id"]] = time.time()
                acks.append(asyncio.create_task(prod.send(raw)))
            produce_wall = time.time() - t0
            await asyncio.gather(*acks)
        load = await searching if searching is not None else None
        if api is not None:
            await api.stop()
        complete = await index.wait_for(set(sent_at), args.drain)
        cpu = meter.stop()
        hist1 = histogram_snapshot(FRESHNESS)
        window_end = time.perf_counter()
        busy, calls, embedded = embedder.busy(p0, window_end)
        stages = timer.as_dict()
        done_at = dict(timer.done_at)
    finally:
        await worker.stop()

    applied = index.commit_applied
    rows: list[dict[str, float]] = []
    for doc_id, sent in sent_at.items():
        if doc_id not in applied:
            continue
        marks = done_at.get(doc_id, {})
        rows.append(
            {
                "sent_s": sent - t0,
                "latency_s": applied[doc_id] - sent,
                "preprocessed_s": marks.get("preprocess", float("nan")) - sent,
                "embedded_s": marks.get("embed", float("nan")) - sent,
            }
        )
    lat = [r["latency_s"] for r in rows]
    pre = [r["preprocessed_s"] for r in rows if not np.isnan(r["preprocessed_s"])]
    emb = [r["embedded_s"] for r in rows if not np.isnan(r["embedded_s"])]
    span = max(produce_wall, 1e-9)

    def q(xs: list[float]) -> dict[str, float]:
        return {
            "p50": round(percentile(xs, 50), 3),
            "p90": round(percentile(xs, 90), 3),
            "p99": round(percentile(xs, 99), 3),
            "max": round(max(xs), 3) if xs else float("nan"),
            "mean": round(float(np.mean(xs)), 3) if xs else float("nan"),
        }

    return {
        "benchmark": "freshness",
        "target": "p99 <= 1.0 s",
        "environment": environment(),
        "params": {
            "duration_s": args.duration,
            "load_fraction": args.load,
            "embedder": embedder.name,
            "embedder_capacity_chunks_per_s": capacity,
            "calibration_chunks": calib["chunks"],
            "chunks_per_doc": round(chunks_per_doc, 3),
            "rate_docs_per_s": round(rate, 3),
            "rate_chunks_per_s": round(rate * chunks_per_doc, 2),
            "embed_batch_size": batch,
            "embed_batch_window_ms": settings.embed_batch_window_ms,
            "kafka_partitions": settings.kafka_partitions,
            "log_level": args.log_level,
        },
        "produced": len(sent_at),
        "indexed": len(rows),
        "complete": complete,
        "achieved_rate_docs_per_s": round(len(sent_at) / span, 3),
        "producer_schedule_lateness_p99_s": round(percentile(lateness, 99), 4),
        "latency_s": q(lat),
        "to_preprocessed_s": q(pre),
        "to_embedded_s": q(emb),
        "histogram_tickerwire_freshness_seconds": {
            "p50": round(_delta_quantile(hist0, hist1, 0.5), 3),
            "p99": round(_delta_quantile(hist0, hist1, 0.99), 3),
            "count": hist1.get("count", 0.0) - hist0.get("count", 0.0),
        },
        "embedder": {
            "busy_fraction": round(busy / (window_end - p0), 3),
            "calls": calls,
            "texts": embedded,
            "mean_batch": round(embedded / calls, 2) if calls else 0.0,
        },
        "search_under_load": None
        if load is None
        else {
            "concurrency": load.concurrency,
            "seconds": load.seconds,
            "requests": len(load.latencies),
            "errors": len(load.errors),
            "first_errors": load.errors[:5],
            "p50_ms": round(load.percentile_ms(50), 2),
            "p99_ms": round(load.percentile_ms(99), 2),
        },
        "stages": stages,
        "cpu": cpu,
        "per_doc": [{k: round(v, 4) for k, v in r.items()} for r in rows],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["per_doc"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.scatter([r["sent_s"] for r in rows], [r["latency_s"] for r in rows], s=8, label="committed")
    a.scatter(
        [r["sent_s"] for r in rows],
        [r["embedded_s"] for r in rows],
        s=4,
        alpha=0.5,
        label="embedded",
    )
    a.axhline(1.0, color="red", lw=1, ls="--", label="target p99 1 s")
    a.set_xlabel("produced at (s)")
    a.set_ylabel("latency (s)")
    a.set_title("produced → searchable, per document")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    lat = sorted(r["latency_s"] for r in rows)
    if lat:
        b.plot(lat, [i / len(lat) for i in range(1, len(lat) + 1)])
    b.axvline(1.0, color="red", lw=1, ls="--")
    b.set_xlabel("latency (s)")
    b.set_ylabel("fraction of documents")
    ls = result["latency_s"]
    b.set_title(f"CDF: p50 {ls['p50']} s, p99 {ls['p99']} s")
    b.grid(alpha=0.3)
    p = result["params"]
    fig.suptitle(
        f"Freshness at {p['rate_chunks_per_s']} chunks/s "
        f"({p['load_fraction']:.0%} of {p['embedder_capacity_chunks_per_s']} chunks/s capacity)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_result(r: dict[str, Any]) -> None:
    p, ls = r["params"], r["latency_s"]
    h = r["histogram_tickerwire_freshness_seconds"]
    rows: list[tuple[str, Any]] = [
        ("embedder capacity", f"{p['embedder_capacity_chunks_per_s']} chunks/s"),
        (
            "offered load",
            f"{p['rate_docs_per_s']} docs/s = {p['rate_chunks_per_s']} chunks/s "
            f"({p['chunks_per_doc']} chunks/doc) for {p['duration_s']} s",
        ),
        ("produced / indexed", f"{r['produced']} / {r['indexed']} (complete: {r['complete']})"),
        ("LATENCY p50 / p99", f"{ls['p50']} s / {ls['p99']} s  (target {r['target']})"),
        ("latency p90 / max / mean", f"{ls['p90']} / {ls['max']} / {ls['mean']} s"),
        (
            "→ preprocessed p50 / p99",
            f"{r['to_preprocessed_s']['p50']} / {r['to_preprocessed_s']['p99']} s",
        ),
        ("→ embedded p50 / p99", f"{r['to_embedded_s']['p50']} / {r['to_embedded_s']['p99']} s"),
        ("histogram p50 / p99", f"{h['p50']} / {h['p99']} s ({h['count']:.0f} commits)"),
        (
            "embedder busy / mean batch",
            f"{r['embedder']['busy_fraction']} / {r['embedder']['mean_batch']}",
        ),
        ("load avg 1m at end", r["cpu"]["loadavg_1m_at_end"]),
    ]
    if (search := r["search_under_load"]) is not None:
        rows.append(
            (
                "SEARCH under load",
                f"{search['concurrency']} clients: {search['requests']} requests, "
                f"{search['errors']} errors, p50 {search['p50_ms']} ms, p99 {search['p99_ms']} ms",
            )
        )
    print(table(rows, "Freshness (produced → searchable)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of producing")
    parser.add_argument("--load", type=float, default=0.5, help="fraction of embedder capacity")
    parser.add_argument("--rate", type=float, default=None, help="docs/s (overrides --load)")
    parser.add_argument("--max-rate", type=float, default=50.0, help="cap on docs/s")
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--calibrate-chunks", type=int, default=96)
    parser.add_argument("--drain", type=float, default=120.0, help="max wait after producing (s)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--log-level", default="warning", choices=["info", "warning"])
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--search-concurrency",
        type=int,
        default=0,
        help="also serve the query API and run this many search clients against it while "
        "producing (the load benchmark; writes load.json)",
    )
    args = parser.parse_args()
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600]")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = "load" if args.search_concurrency else "freshness"
    name = f"{base}{'_' + args.tag if args.tag else ''}"
    result = asyncio.run(run(args))
    print_result(result)
    png = RESULTS_DIR / f"{name}.png"
    plot(result, png)
    result["plot"] = png.name
    print(f"\nwrote {write_json(name, result)}")


if __name__ == "__main__":
    main()
