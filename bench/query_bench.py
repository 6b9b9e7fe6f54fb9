"""Query benchmark over HTTP, the query embedding included: /v1/search and /v1/ask latency.

Run: ``nice -n 5 .venv/bin/python bench/query_bench.py`` (defaults: 10k and 100k chunks, 1 and 8
concurrent clients). Prints a table per size and writes ``bench/results/query.json``.

For each size the benchmark loads the chunks straight into a fresh Qdrant Edge shard (the way a
re-index leaves it: optimized, HNSW built), then starts the real all-in-one process
(``tickerwire up``, the stages and the query API, on a private broker) over that data dir, and
measures from outside, over loopback HTTP:

* ``POST /v1/search`` hybrid with a one-ticker filter, questions from TAT-QA (so the server embeds
  a real question each time): p50/p95/p99 latency and throughput with 1 and 8 concurrent clients;
* the process's RSS after the runs;
* ``POST /v1/ask`` (the default offline answerer) latency, one client.

The chunks carry real TAT-QA passage text and its BM25 sparse vector; the dense vectors are
random unit vectors around 64 cluster centres (embedding 100k passages offline would take an
hour on two cores), so dense ranking quality is meaningless here and only cost is measured. The
HTTP client runs on the same two cores as the server, so the QPS is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from common import (
    DEFAULT_CORPUS,
    environment,
    load_passages,
    log,
    percentile,
    private_broker,
    proc_cpu_seconds,
    table,
    write_json,
)
from index_bench import DOC_TYPES, T0, TICKERS, Corpus
from tickerwire.adapters.index_factory import open_index
from tickerwire.core.ports import Point
from tickerwire.core.settings import Settings
from tickerwire.localbroker import free_loopback_ports
from tickerwire.pipeline.sparse import BM25Encoder

DIM = 384
TICKERWIRE = str(Path(sys.executable).with_name("tickerwire"))
QUESTIONS = DEFAULT_CORPUS.with_name("questions.jsonl")


async def load_index(data_dir: Path, size: int, batch: int = 2000) -> dict[str, float]:
    """``size`` chunks with TAT-QA text, BM25 sparse and random dense vectors; then optimize."""
    settings = Settings(data_dir=data_dir)
    index = open_index(settings, DIM)
    await index.ensure_collection(DIM)
    passages = load_passages(DEFAULT_CORPUS, min(size, 20_000), target_words=0)
    corpus = Corpus(DIM)
    sparse = BM25Encoder()
    rng = random.Random(11)
    t0 = time.perf_counter()
    try:
        for start in range(0, size, batch):
            n = min(batch, size - start)
            dense = corpus.dense(n)
            points = []
            for i in range(n):
                k = start + i
                passage = passages[k % len(passages)]
                published = T0 + k * 60.0
                doc_id = f"bench-{k}"
                points.append(
                    Point(
                        id=str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id)),
                        dense=dense[i].tolist(),
                        sparse=sparse.encode_document(f"{passage.title}\n{passage.text}"),
                        payload={
                            "doc_id": doc_id,
                            "chunk_id": str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id)),
                            "chunk_index": 0,
                            "version": 1,
                            "text": passage.text,
                            "title": passage.title,
                            "url": None,
                            "source": "bench",
                            "doc_type": DOC_TYPES[k % len(DOC_TYPES)],
                            "tickers": [rng.choice(TICKERS)],
                            "language": "en",
                            "published_at": time.strftime(
                                "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(published)
                            ),
                            "published_ts": published,
                            "indexed_ts": time.time(),
                            "model": "bench-random",
                        },
                    )
                )
            await index.upsert(points)
        loaded = time.perf_counter() - t0
        log(f"{size} chunks loaded in {loaded:.1f}s; optimizing")
        t1 = time.perf_counter()
        if await index.needs_optimize():
            await index.optimize()
        optimized = time.perf_counter() - t1
        log(f"optimized in {optimized:.1f}s")
    finally:
        await index.aclose()
    return {"load_s": round(loaded, 1), "optimize_s": round(optimized, 1)}


def questions(count: int) -> list[str]:
    """TAT-QA questions, cycled."""
    with QUESTIONS.open(encoding="utf-8") as fh:
        qs = [json.loads(line)["question"] for line in fh if line.strip()]
    return [qs[i % len(qs)] for i in range(count)]


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def run_clients(
    client: httpx.AsyncClient,
    path: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    server_pid: int,
) -> dict[str, float]:
    """Send ``bodies`` with ``concurrency`` clients; latency percentiles (ms), QPS, and the
    server's CPU per request (user + system ms of its process: what a quiet machine's capacity
    follows from, while the wall-clock numbers depend on what else the cores are running)."""
    cpu0 = proc_cpu_seconds(server_pid)
    latencies: list[float] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    errors = 0

    async def one_client() -> None:
        nonlocal errors
        while not queue.empty():
            body = queue.get_nowait()
            t = time.perf_counter()
            resp = await client.post(path, json=body)
            latencies.append((time.perf_counter() - t) * 1000)
            if resp.status_code != 200:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    cpu = proc_cpu_seconds(server_pid) - cpu0
    return {
        "server_cpu_ms_per_request": round(cpu * 1000 / len(bodies), 2),
        "requests": len(bodies),
        "errors": errors,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "qps": round(len(bodies) / wall, 1),
    }


def search_bodies(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"query": q, "k": 10, "mode": "hybrid", "filters": {"tickers": [rng.choice(TICKERS)]}}
        for q in questions(count)
    ]


async def bench_size(
    bootstrap: str, work: Path, size: int, args: argparse.Namespace
) -> dict[str, Any]:
    data_dir = work / f"data-{size}"
    loading = await load_index(data_dir, size)
    (port,) = free_loopback_ports(1)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TICKERWIRE_KAFKA_BOOTSTRAP": bootstrap,
        "TICKERWIRE_DATA_DIR": str(data_dir),
        "TICKERWIRE_APP_ID": f"query-bench-{size}",
        "TICKERWIRE_HTTP_PORT": str(port),
        "TICKERWIRE_LOG_LEVEL": "warning",
        # The per-client rate limit (600/minute by default) would answer most of a load test 429.
        "TICKERWIRE_API_RATE_LIMIT": "1000000/minute",
    }
    log_path = work / f"up-{size}.log"
    with log_path.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            TICKERWIRE, "up", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    result: dict[str, Any] = {"chunks": size, **loading}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 180
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"tickerwire up exited; see {log_path}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"tickerwire up not ready; see {log_path}")
                await asyncio.sleep(0.5)
            status = (await client.get("/v1/status")).json()
            result["points_served"] = status["points"]
            await run_clients(client, "/v1/search", search_bodies(args.warmup, 1), 2, proc.pid)
            for clients in args.clients:
                n = args.requests * clients if clients > 1 else args.requests
                bodies = search_bodies(n, clients)
                stats = await run_clients(client, "/v1/search", bodies, clients, proc.pid)
                result[f"search_c{clients}"] = stats
                log(f"{size} chunks, {clients} client(s): {stats}")
            result["rss_mib"] = rss_mib(proc.pid)
            ask_bodies = [{"question": q, "k": 5} for q in questions(args.ask_requests)]
            probe = await client.post("/v1/ask", json=ask_bodies[0])
            if probe.status_code == 200:
                result["ask_c1"] = await run_clients(client, "/v1/ask", ask_bodies, 1, proc.pid)
                log(f"{size} chunks, /v1/ask: {result['ask_c1']}")
            else:
                result["ask_c1"] = {"error": f"/v1/ask answered {probe.status_code}"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 30)
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="query-bench-") as tmp:
        work = Path(tmp)
        async with private_broker(work) as broker:
            runs = [await bench_size(broker.bootstrap, work, size, args) for size in args.sizes]
    return {
        "benchmark": "query",
        "environment": environment(),
        "params": {
            "mode": "hybrid",
            "k": 10,
            "filter": "one ticker of 10",
            "requests_per_client_run": args.requests,
            "clients": args.clients,
        },
        "target": {"search_p95_ms_at_100k": 20, "search_qps_at_100k": 300},
        "runs": runs,
    }


def _print(payload: dict[str, Any]) -> None:
    for run in payload["runs"]:
        rows: list[tuple[str, Any]] = [
            ("load / optimize s", f"{run['load_s']} / {run['optimize_s']}")
        ]
        for key, stats in run.items():
            if key.startswith(("search_c", "ask_c")) and "p50_ms" in stats:
                rows.append(
                    (
                        key,
                        f"p50 {stats['p50_ms']} ms, p95 {stats['p95_ms']}, p99 {stats['p99_ms']}, "
                        f"{stats['qps']} req/s, server CPU "
                        f"{stats['server_cpu_ms_per_request']} ms/req, errors {stats['errors']}",
                    )
                )
        rows.append(("RSS MiB", run.get("rss_mib")))
        print(table(rows, f"query bench, {run['chunks']} chunks"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 100_000]
    )
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])
    parser.add_argument("--requests", type=int, default=300, help="per client")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--ask-requests", type=int, default=30)
    parser.add_argument("--tag", default="", help="suffix of the results file")
    ns = parser.parse_args()
    payload = asyncio.run(main(ns))
    _print(payload)
    print(write_json(f"query{ns.tag}", payload))
