"""Scale-out benchmark: the zero-cost-embedder ceiling, all-in-one against one process per stage.

The same documents and ZeroEmbedder as ``pipeline_ceiling.py`` (constant vectors, the real
tokenizer, so preprocess does its real work), run twice on a private broker:

``all-in-one``
    one worker process running the three stages (what ``tickerwire up --no-http`` runs);
``split``
    three worker processes, one per stage, each in its own consumer group (what
    ``tickerwire worker preprocess|embed|index`` runs).

Each worker is a child process (this file with ``--child``). The parent waits until every child
is ready, then produces all documents and waits for the index child to have applied every
commit. Reported per run: chunks/s (first record produced → last commit applied), and CPU
milliseconds per chunk of every process and of the broker (from /proc, over the same window).

    HF_HUB_OFFLINE=1 nice .venv/bin/python bench/scaleout_bench.py --docs 3000

Results: ``bench/results/scaleout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import (
    DEFAULT_CORPUS,
    InProcessWorker,
    TimedIndex,
    ZeroEmbedder,
    bench_settings,
    environment,
    load_passages,
    log,
    open_bench_resources,
    private_broker,
    proc_cpu_seconds,
    produce,
    raw_document,
    table,
    write_json,
)
from tickerwire.core.logging import configure_logging
from tickerwire.stages.app import ALL_STAGES, StageName

MODES: dict[str, list[tuple[StageName, ...]]] = {
    "all-in-one": [ALL_STAGES],
    "split": [("preprocess",), ("embed",), ("index",)],
}


# --- a child: one worker process --------------------------------------------------------------


async def child(args: argparse.Namespace) -> None:
    """Run ``args.stages`` until SIGTERM; the index child reports when every doc is applied."""
    stages: tuple[StageName, ...] = tuple(args.stages.split(","))
    workdir = Path(args.workdir)
    settings = bench_settings(args.bootstrap, workdir, args.app_id, "warning")
    configure_logging(fmt="json", level="warning", service=True)
    res = await open_bench_resources(settings, ZeroEmbedder())
    assert isinstance(res.index, TimedIndex)
    worker = InProcessWorker(settings, res, stages=stages)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.start(limit_s=180)
    (workdir / "ready").write_text("ready")
    try:
        if "index" in stages:
            ids = {f"scale-{i:06d}" for i in range(args.docs)}
            complete = await res.index.wait_for(ids, args.timeout)
            applied = [res.index.commit_applied[i] for i in ids if i in res.index.commit_applied]
            done = {
                "complete": complete,
                "docs": len(applied),
                "chunks": res.index.upserted,
                "last_commit_wall": max(applied) if applied else time.time(),
            }
            (workdir / "done.json").write_text(json.dumps(done))
        await stop.wait()
    finally:
        await worker.stop()
        await res.aclose()


# --- the parent ---------------------------------------------------------------------------------


class Child:
    def __init__(self, stages: tuple[StageName, ...], root: Path, bootstrap: str, args: Any):
        self.name = "+".join(stages)
        self.workdir = root / self.name.replace("+", "-")
        self.workdir.mkdir(parents=True)
        app_id = f"scale-{args.run_id}" + ("" if len(stages) > 1 else f"-{stages[0]}")
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--stages",
            ",".join(stages),
            "--workdir",
            str(self.workdir),
            "--bootstrap",
            bootstrap,
            "--app-id",
            app_id,
            "--docs",
            str(args.docs),
            "--timeout",
            str(args.timeout),
        ]
        self.log = (self.workdir / "child.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"child {self.name} exited with {self.proc.returncode}")
        return (self.workdir / "ready").exists()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


async def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {seconds:.0f}s")
        await asyncio.sleep(0.1)


async def run_mode(mode: str, docs: list[dict[str, Any]], args: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"tw-scaleout-{mode}-") as tmp:
        root = Path(tmp)
        async with private_broker(root) as broker:
            broker_pid = broker.status().pid
            children = [Child(s, root, broker.bootstrap, args) for s in MODES[mode]]
            try:
                for c in children:
                    await wait_for(c.ready, 240, f"{c.name} ready")
                index_child = next(c for c in children if "index" in c.name)
                cpu0 = {c.name: proc_cpu_seconds(c.proc.pid) for c in children}
                broker0 = proc_cpu_seconds(broker_pid) if broker_pid else float("nan")
                t0 = time.time()
                log(f"{mode}: producing {len(docs)} docs")
                await produce(broker.bootstrap, docs)
                done_file = index_child.workdir / "done.json"
                await wait_for(done_file.exists, args.timeout + 30, "every commit applied")
                cpu1 = {c.name: proc_cpu_seconds(c.proc.pid) for c in children}
                broker1 = proc_cpu_seconds(broker_pid) if broker_pid else float("nan")
                done = json.loads(done_file.read_text())
            finally:
                for c in children:
                    c.stop()
    seconds = done["last_commit_wall"] - t0
    chunks = int(done["chunks"])
    per_chunk = {name: round((cpu1[name] - cpu0[name]) * 1000 / chunks, 3) for name in cpu0}
    per_chunk["broker"] = round((broker1 - broker0) * 1000 / chunks, 3)
    return {
        "mode": mode,
        "complete": done["complete"],
        "docs": done["docs"],
        "chunks": chunks,
        "seconds_produce_start_to_last_commit": round(seconds, 3),
        "chunks_per_s": round(chunks / seconds, 1),
        "cpu_ms_per_chunk": per_chunk,
        "cpu_ms_per_chunk_total": round(sum(per_chunk.values()), 3),
        "cores_used": round(
            (sum(cpu1.values()) - sum(cpu0.values()) + broker1 - broker0) / seconds, 2
        ),
    }


async def parent(args: argparse.Namespace) -> dict[str, Any]:
    passages = load_passages(args.corpus, args.docs, target_words=args.words)
    docs = [raw_document(f"scale-{i:06d}", p) for i, p in enumerate(passages)]
    runs = [await run_mode(mode, docs, args) for mode in ("all-in-one", "split")]
    return {
        "benchmark": "scaleout",
        "environment": environment(),
        "params": {
            "docs": args.docs,
            "words": args.words,
            "embedder": "ZeroEmbedder (bench/common/zero_embedder.py): constant vectors, "
            "real tokenizer",
        },
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--words", type=int, default=0, help="0: one corpus row per document")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stages", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--app-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        asyncio.run(child(args))
        return
    args.run_id = uuid.uuid4().hex[:6]
    result = asyncio.run(parent(args))
    rows: list[tuple[str, Any]] = []
    for r in result["runs"]:
        rows.append((f"{r['mode']}: chunks/s", r["chunks_per_s"]))
        for name, ms in r["cpu_ms_per_chunk"].items():
            rows.append((f"{r['mode']}: CPU ms/chunk {name}", ms))
        rows.append((f"{r['mode']}: CPU ms/chunk total", r["cpu_ms_per_chunk_total"]))
    print(table(rows, "Scale-out ceiling (zero-cost embedder)"))
    path = write_json("scaleout", result)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
