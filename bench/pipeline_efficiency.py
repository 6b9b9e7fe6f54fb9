"""Pipeline efficiency: end-to-end chunks/s of the real worker ÷ the embedder alone (target ≥ 0.90).

~200-word passages packed from TAT-QA (one or two chunks per document). In one run, with the same
model and batch size (``settings.embed_batch_size``) and the same ``embed_text`` strings: the
embedder alone (before and after the pipeline), then N documents produced in a burst to the
warmed-up worker (all three stages in this process, on a private broker), timed from the first
produce to the last commit applied in the index. Writes ``bench/results/pipeline_efficiency.json``
and a PNG::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_efficiency.py --docs 600
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common import (
    RESULTS_DIR,
    BenchSession,
    CpuMeter,
    InProcessWorker,
    Passage,
    TimedEmbedder,
    bench_session,
    bounded,
    embed_alone,
    embed_texts_of,
    environment,
    load_passages,
    log,
    pipeline_parser,
    produce,
    raw_document,
    run_benchmark,
    sample,
    stage_rows,
    table,
)
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.core.settings import Settings


async def efficiency(args: argparse.Namespace) -> dict[str, Any]:
    passages = load_passages(args.corpus, args.docs + args.warmup, target_words=args.words)

    def make(settings: Settings) -> TimedEmbedder:
        return TimedEmbedder(open_embedder(settings))

    async with bench_session("eff", args.log_level, make) as b:
        meter = CpuMeter(b.broker.status().pid)
        return await _efficiency_run(args, b, passages, meter)


async def _efficiency_run(
    args: argparse.Namespace, b: BenchSession, passages: list[Passage], meter: CpuMeter
) -> dict[str, Any]:
    settings, embedder, index = b.settings, b.embedder, b.index
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

    worker = InProcessWorker(settings, b.res)
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


def plot_efficiency(result: dict[str, Any], path: Path) -> bool:
    """Chunks over time, alone and in the pipeline; False without matplotlib (the plot extra)."""
    try:
        import matplotlib
    except ImportError:
        log("no chart: matplotlib is the optional plot extra (uv sync --extra plot)")
        return False

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
    return True


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
    rows.extend(stage_rows(d["stages"]))
    print(table(rows, "Pipeline efficiency (end-to-end ÷ embedder alone)"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = pipeline_parser(__doc__.split("\n\n")[0] if __doc__ else "", docs=600, words=200)
    parser.add_argument("--warmup", type=int, default=8, help="warm-up documents")
    args = parser.parse_args(argv)

    def finish(name: str, result: dict[str, Any]) -> None:
        digest = hashlib.sha256(args.corpus.read_bytes()).hexdigest()
        result["params"]["corpus_sha256_12"] = digest[:12]
        png = RESULTS_DIR / f"{name}.png"
        if plot_efficiency(result, png):
            result["plot"] = png.name

    run_benchmark("pipeline_efficiency", args, efficiency, print_efficiency, before_write=finish)


if __name__ == "__main__":
    main()
