"""Vector index benchmark: upserts/s, query p50/p99 before and after optimize, event-loop stalls.

Run: ``.venv/bin/python bench/index_bench.py --points 50000``. Prints a table and writes JSON to
``bench/results/index.json``; ``--section commits`` runs only the commit benchmark. The data
are random-ish: 384-d unit vectors drawn around 64 cluster centres, and ~30-term sparse vectors
drawn Zipf-like from a 30k vocabulary.

Besides latency it measures what the maintenance design is about (docs/index-maintenance.md):
the event loop's worst lag while ``EdgeIndex.optimize()`` runs (child process), and, for
comparison, while ``EdgeShard.optimize()`` runs in a thread of this process (``--gil-probe``).

The ``commits`` section measures how fast commit records are applied, as the index stage does:
``--commit-docs`` single-chunk documents are upserted, then one commit per document is applied
in batches of ``--commit-batch``, once per document (one ``apply_commits`` call each, the old path)
and once per batch (``apply_commits``), each on a fresh index. Two cases: ``keep`` (the commit
keeps the document's chunk, the common case of a new document: nothing is deleted) and ``drop``
(the commit keeps nothing: every document is deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.core.payload import IndexPayload
from tickerwire.core.ports import (
    IndexQuery,
    Point,
    SearchFilters,
    SparseVector,
    VectorIndex,
)

TICKERS = ("AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "GOOG", "META", "JPM", "XOM", "KO")
DOC_TYPES = ("news", "filing", "transcript", "research", "market_stats")
T0 = 1_700_000_000.0


class Corpus:
    """Deterministic random-ish points and queries."""

    def __init__(self, dim: int, seed: int = 7) -> None:
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.standard_normal((64, dim)).astype(np.float32)
        ranks = np.arange(1, 30_001, dtype=np.float64)
        self.term_p = (1.0 / ranks) / (1.0 / ranks).sum()

    def dense(self, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        picks = self.rng.integers(0, len(self.centres), n)
        vecs = self.centres[picks] + 0.8 * self.rng.standard_normal((n, self.dim))
        out: np.ndarray[Any, np.dtype[np.float32]] = (
            vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        ).astype(np.float32)
        return out

    def sparse(self, terms: int = 30) -> SparseVector:
        idx = np.unique(self.rng.choice(len(self.term_p), size=terms, p=self.term_p))
        vals = 1.0 + self.rng.random(len(idx))
        return SparseVector(tuple(int(i) for i in idx), tuple(float(v) for v in vals))

    def points(self, start: int, n: int) -> list[Point]:
        dense = self.dense(n)
        pts = []
        for j in range(n):
            i = start + j
            ts = T0 + i * 60.0
            point = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{i}"))
            pts.append(
                Point(
                    id=point,
                    dense=dense[j].tolist(),
                    sparse=self.sparse(),
                    payload=IndexPayload(
                        doc_id=f"doc-{i // 8}",
                        chunk_id=point,
                        chunk_index=i % 8,
                        version=1,
                        text=f"chunk {i}",
                        title=f"title {i // 8}",
                        url=f"https://example.test/{i // 8}",
                        source=f"src{i % 7}",
                        doc_type=DOC_TYPES[i % len(DOC_TYPES)],
                        tickers=[TICKERS[i % len(TICKERS)], TICKERS[(i * 7) % len(TICKERS)]],
                        published_at=datetime.fromtimestamp(ts, UTC),
                        indexed_ts=time.time(),
                    ).to_dict(),
                )
            )
        return pts


def pct(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds."""
    return float(np.percentile(np.array(values) * 1000.0, q))


async def query_latencies(index: VectorIndex, corpus: Corpus, n: int) -> dict[str, Any]:
    """p50/p99 (ms) of dense, sparse, hybrid and filtered hybrid queries."""
    dense = corpus.dense(n)
    sparse = [corpus.sparse(8) for _ in range(n)]
    filtered = SearchFilters(
        tickers=("NVDA", "KO"),
        doc_types=("news", "filing"),
        as_of=datetime.fromtimestamp(T0 + 60.0 * 30_000, UTC),
    )
    cases: dict[str, tuple[str, SearchFilters]] = {
        "dense": ("dense", SearchFilters()),
        "sparse": ("sparse", SearchFilters()),
        "hybrid": ("hybrid", SearchFilters()),
        "hybrid_filtered": ("hybrid", filtered),
    }
    out: dict[str, Any] = {}
    for name, (mode, filters) in cases.items():
        times = []
        for i in range(n):
            start = time.perf_counter()
            await index.search(
                IndexQuery(
                    mode,  # type: ignore[arg-type]
                    dense=dense[i].tolist(),
                    sparse=sparse[i],
                    filters=filters,
                )
            )
            times.append(time.perf_counter() - start)
        out[name] = {"p50_ms": round(pct(times, 50), 3), "p99_ms": round(pct(times, 99), 3)}
    return out


async def loop_lag_during(
    work: Awaitable[Any], probe: Callable[[], Awaitable[Any]] | None = None
) -> dict[str, Any]:
    """Run ``work``; meanwhile tick the event loop every 10 ms (and run ``probe`` every 100 ms).

    Returns the work's wall time, the worst and p99 loop lag, and probe latencies.
    """
    lags: list[float] = []
    probes: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    async def prober() -> None:
        while probe is not None and not done.is_set():
            start = time.perf_counter()
            await probe()
            probes.append(time.perf_counter() - start)
            await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(prober())]
    start = time.perf_counter()
    try:
        await work
    finally:
        wall = time.perf_counter() - start
        done.set()
        await asyncio.gather(*tasks)
    result: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "loop_ticks": len(lags),
        "loop_lag_max_ms": round(max(lags, default=wall) * 1000, 1),
        "loop_lag_p99_ms": round(pct(lags, 99), 1) if lags else None,
    }
    if probes:
        result["probe_queries"] = len(probes)
        result["probe_p50_ms"] = round(pct(probes, 50), 2)
        result["probe_max_ms"] = round(max(probes) * 1000, 2)
    return result


async def gil_probe(shard_dir: Path, work_dir: Path) -> dict[str, Any]:
    """EdgeShard.optimize() on a copy, in a thread of this process: how long the loop stalls."""
    copy = work_dir / "gil-probe"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(shard_dir, copy)

    def run() -> None:
        shard = qe.EdgeShard.load(str(copy))
        shard.optimize()
        shard.close()

    result = await loop_lag_during(asyncio.to_thread(run))
    shutil.rmtree(copy, ignore_errors=True)
    return result


def single_chunk_docs(corpus: Corpus, n: int) -> list[Point]:
    """``n`` one-chunk documents ``cdoc-0`` .. ``cdoc-{n-1}`` (chunk 0 of each)."""
    points = corpus.points(0, n)
    return [
        Point(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"cdoc-{i}#0")),
            dense=p.dense,
            sparse=p.sparse,
            payload={**p.payload, "doc_id": f"cdoc-{i}", "chunk_index": 0},
        )
        for i, p in enumerate(points)
    ]


async def per_doc(index: VectorIndex, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
    """The old path: one ``apply_commits`` call per commit."""
    deleted = 0
    for doc_id, keep in commits:
        deleted += await index.apply_commits([(doc_id, keep)])
    return deleted


async def batched(index: VectorIndex, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
    """The new path: one ``apply_commits`` per batch."""
    return await index.apply_commits(commits)


async def commit_bench(
    args: argparse.Namespace,
    work: Path,
    apply: Callable[[VectorIndex, Sequence[tuple[str, Sequence[str]]]], Awaitable[int]],
    case: str,
) -> dict[str, Any]:
    """Upsert the one-chunk documents into a fresh index, then apply one commit per document."""
    docs = single_chunk_docs(Corpus(args.dim), args.commit_docs)
    index = open_bench_index(args, work / f"commits-{apply.__name__}-{case}", args.commit_docs)
    try:
        await index.ensure_collection(args.dim)
        started = time.perf_counter()
        for start in range(0, len(docs), args.batch):
            await index.upsert(docs[start : start + args.batch])
        upsert_s = time.perf_counter() - started
        commits = [(str(p.payload["doc_id"]), [p.id] if case == "keep" else []) for p in docs]
        deleted = 0
        started = time.perf_counter()
        for start in range(0, len(commits), args.commit_batch):
            deleted += await apply(index, commits[start : start + args.commit_batch])
        apply_s = time.perf_counter() - started
        left = await index.count()
    finally:
        await index.aclose()
    expected = 0 if case == "keep" else len(docs)
    if deleted != expected or left != len(docs) - expected:
        raise AssertionError(f"{apply.__name__}/{case}: deleted {deleted}, {left} points left")
    return {
        "commits_per_s": round(len(commits) / apply_s),
        "us_per_commit": round(apply_s / len(commits) * 1e6, 1),
        "apply_seconds": round(apply_s, 3),
        "deleted": deleted,
        "upsert_per_s": round(len(docs) / upsert_s),
    }


async def commits_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Commits/s applied per document and per batch, for the ``keep`` and ``drop`` cases."""
    out: dict[str, Any] = {"docs": args.commit_docs, "batch": args.commit_batch}
    for case in ("keep", "drop"):
        before = await commit_bench(args, work, per_doc, case)
        after = await commit_bench(args, work, batched, case)
        out[case] = {
            "per_doc": before,
            "batched": after,
            "speedup": round(after["commits_per_s"] / before["commits_per_s"], 1),
        }
    return out


def open_bench_index(args: argparse.Namespace, path: Path, points: int) -> VectorIndex:
    """An unopened index of ``args.backend`` (Edge at ``path``, else qdrant-client local mode)."""
    if args.backend == "edge":
        return EdgeIndex(path, optimize_min_unindexed=max(1, points // 4))
    return ServerIndex("bench", location=":memory:")


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="index-bench-", dir=args.tmp))
    results: dict[str, Any] = {"backend": args.backend, "dim": args.dim}
    try:
        if args.section in ("all", "commits"):
            results["commits"] = await commits_section(args, work)
        if args.section in ("all", "main"):
            results.update(await main_section(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


async def main_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Upserts/s, query latencies before and after optimize, optimize's event-loop lag."""
    corpus = Corpus(args.dim)
    index = open_bench_index(args, work / "edge", args.points)
    results: dict[str, Any] = {
        "points": args.points,
        "batch": args.batch,
        "queries": args.queries,
    }
    try:
        await index.ensure_collection(args.dim)
        gen_s = 0.0
        write_s = 0.0
        for start in range(0, args.points, args.batch):
            t = time.perf_counter()
            batch = corpus.points(start, min(args.batch, args.points - start))
            gen_s += time.perf_counter() - t
            t = time.perf_counter()
            await index.upsert(batch)
            write_s += time.perf_counter() - t
        results["upsert_per_s"] = round(args.points / write_s)
        results["upsert_seconds"] = round(write_s, 2)
        results["before_optimize"] = await query_latencies(index, corpus, args.queries)
        if isinstance(index, EdgeIndex):
            results["stats_before"] = await index.stats()
            results["needs_optimize_before"] = await index.needs_optimize()
            if args.gil_probe:
                live = (index.path / "current").resolve()
                await index.aclose()  # flushes; the probe optimizes a copy in-process
                results["inprocess_optimize"] = await gil_probe(live, work)
                index = EdgeIndex(work / "edge", optimize_min_unindexed=args.points // 4)
                await index.ensure_collection(args.dim)
            probe_vec = corpus.dense(1)[0].tolist()
            extra = corpus.points(args.points, 2000)

            async def probe() -> None:
                await index.search(IndexQuery("dense", dense=probe_vec))
                if extra:  # keep writing while the optimize runs: the journal replays these
                    await index.upsert([extra.pop()])

            results["child_optimize"] = await loop_lag_during(index.optimize(), probe)
            results["stats_after"] = await index.stats()
            results["needs_optimize_after"] = await index.needs_optimize()
            results["count_after"] = await index.count()
            results["after_optimize"] = await query_latencies(index, corpus, args.queries)
    finally:
        await index.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backend", choices=("edge", "server"), default="edge")
    parser.add_argument("--section", choices=("all", "main", "commits"), default="all")
    parser.add_argument("--commit-docs", type=int, default=5000)
    parser.add_argument("--commit-batch", type=int, default=512)
    parser.add_argument(
        "--gil-probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time EdgeShard.optimize() run in a thread of this process (edge only)",
    )
    parser.add_argument("--tmp", default=None, help="scratch directory (default: system temp)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/index.json")
    args = parser.parse_args()
    results = asyncio.run(bench(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
