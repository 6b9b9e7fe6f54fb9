"""Framework ceiling: the real worker with a zero-cost embedder (target ≥ 2,000 chunks/s).

By default short documents (one TAT-QA row each, one chunk: the worst case, every chunk pays a
whole document's records); ``--words N`` packs documents of about N words instead (filing-sized
documents have many chunks each). N documents are produced to the raw topic first; the worker is
then started and timed from its first preprocess batch to the last commit applied. ``--profile``
runs the worker under cProfile (event-loop thread). Writes ``bench/results/pipeline_ceiling.json``::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_ceiling.py --docs 20000
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_ceiling.py --docs 600 --words 2000 --tag long
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from common import (
    REPO_ROOT,
    RESULTS_DIR,
    BenchSession,
    InProcessWorker,
    Passage,
    StageTimer,
    bounded,
    environment,
    histogram_snapshot,
    load_passages,
    pipeline_parser,
    produce_before_worker,
    run_benchmark,
    stage_rows,
    table,
    zero_session,
)


async def ceiling(args: argparse.Namespace) -> dict[str, Any]:
    passages = load_passages(args.corpus, args.docs, target_words=args.words)

    async with zero_session("ceil", args.log_level) as b:
        return await _ceiling_run(args, b, passages)


async def _ceiling_run(
    args: argparse.Namespace, b: BenchSession, passages: list[Passage]
) -> dict[str, Any]:
    settings, embedder, index = b.settings, b.embedder, b.index
    docs, produce_s = await produce_before_worker(settings, passages, "ceil", args.timeout)
    words = [p.words for p in passages]

    profiler: Any = None
    if args.profile:
        # The event-loop thread (faust, all stage handlers, the sparse encoder, record parsing and
        # serialisation) is what cProfile sees; preprocess's to_thread work and Edge's executor
        # are in other threads and show up as waits.
        profiler = cProfile.Profile()
    timer = StageTimer()
    worker = InProcessWorker(settings, b.res, timer=timer)
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
            "embedder": "ZeroEmbedder (bench/common): constant vectors, real tokenizer",
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
    rows.extend(stage_rows(r["stages"]))
    print(table(rows, "Framework ceiling (zero-cost embedder)"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = pipeline_parser(__doc__.split("\n\n")[0] if __doc__ else "", docs=20000, words=0)
    parser.add_argument("--profile", action="store_true", help="cProfile the worker")
    run_benchmark("pipeline_ceiling", parser.parse_args(argv), ceiling, print_ceiling)


if __name__ == "__main__":
    main()
