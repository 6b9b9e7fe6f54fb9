"""Throughput of the offline embedder: passages/s (≈200-word tatqa passages) and queries/s.

For each thread count, worker count and sub-batch token budget it embeds the same passages in
calls of ``--call-size`` texts and runs single short queries one by one; every figure is the best of
``--repeats`` runs, because other processes share the cores. Prints a table and writes
bench/results/embedder.json.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/embedder_bench.py [--passages 64] [--threads 1 2]
        [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tickerwire.adapters.embed_local import LocalEmbedder, default_threads

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "tatqa"


def load_texts(data: Path, n_passages: int, n_queries: int) -> tuple[list[str], list[str]]:
    """≈200-word passages cut from tatqa contexts, and short tatqa questions."""
    with (data / "contexts.jsonl").open(encoding="utf-8") as fh:
        words = " ".join(json.loads(line)["text"] for line in fh).split()
    passages = [" ".join(words[i * 200 : (i + 1) * 200]) for i in range(n_passages)]
    with (data / "questions.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line)["question"] for line in itertools.islice(fh, n_queries)]
    return passages, queries


async def run_config(
    threads: int,
    workers: int,
    batch_tokens: int,
    passages: list[str],
    queries: list[str],
    call_size: int,
    repeats: int,
    strip: bool = True,
    spin: bool = False,
) -> dict[str, Any]:
    async with LocalEmbedder(
        threads=threads,
        workers=workers,
        max_batch_tokens=batch_tokens,
        strip_nan_guards=strip,
        spin=spin,
    ) as emb:
        await emb.embed_documents(passages[:4])  # warm-up
        tokens = sum(min(emb.count_tokens(p) + 2, 256) for p in passages)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            for i in range(0, len(passages), call_size):
                await emb.embed_documents(passages[i : i + call_size])
            best = min(best, time.perf_counter() - started)
        latencies: list[float] = []
        for _ in range(repeats):
            for query in queries:
                started = time.perf_counter()
                await emb.embed_query(query)
                latencies.append(time.perf_counter() - started)
        return {
            "graph": "nan-guards-stripped" if strip else "as-exported",
            "threads": threads,
            "workers": workers,
            "spin": spin,
            "max_batch_tokens": batch_tokens,
            "rows_per_sub_batch_at_256": max(1, batch_tokens // 256),
            "passages_per_s": round(len(passages) / best, 1),
            "tokens_per_s": round(tokens / best),
            "query_ms_p50": round(statistics.median(latencies) * 1000, 2),
            "query_ms_min": round(min(latencies) * 1000, 2),
            "queries_per_s": round(1 / statistics.median(latencies), 1),
        }


async def amain(args: argparse.Namespace) -> int:
    passages, queries = load_texts(args.data, args.passages, args.queries)
    print(
        f"{len(passages)} passages of 200 words (truncated to 256 word pieces), "
        f"{len(queries)} queries; calls of {args.call_size}; best of {args.repeats}"
    )
    header = (
        f"{'threads':>7} {'workers':>7} {'batch_tok':>9} {'passages/s':>10} {'tokens/s':>9} "
        f"{'query p50 ms':>12} {'queries/s':>9}"
    )
    print(f"{'graph':>24} " + header)
    rows = []
    pairs = [(t, w) for t in args.threads for w in args.workers if w <= t]
    configs = [(t, w, b, True, False) for t, w in pairs for b in args.batch_tokens]
    if args.compare_unpatched:
        configs += [(t, w, args.batch_tokens[-1], False, False) for t, w in pairs]
    if args.compare_spin:
        configs += [(t, w, args.batch_tokens[-1], True, True) for t, w in pairs]
    for threads, workers, batch_tokens, strip, spin in configs:
        row = await run_config(
            threads,
            workers,
            batch_tokens,
            passages,
            queries,
            args.call_size,
            args.repeats,
            strip,
            spin,
        )
        rows.append(row)
        label = row["graph"] + (" spin" if spin else "")
        print(
            f"{label:>24} {threads:>7} {workers:>7} {batch_tokens:>9} {row['passages_per_s']:>10} "
            f"{row['tokens_per_s']:>9} {row['query_ms_p50']:>12} {row['queries_per_s']:>9}",
            flush=True,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": {
            "cpus": default_threads(),
            "platform": platform.platform(),
            "loadavg_at_end": os.getloadavg(),
        },
        "passages": len(passages),
        "queries": len(queries),
        "call_size": args.call_size,
        "results": rows,
    }
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "embedder.json")
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--call-size", type=int, default=64, help="texts per embed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, default_threads()}))
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=sorted({1, default_threads()}),
        help="sub-batches run at once (each on threads // workers cores)",
    )
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[256, 1024, 2048, 8192])
    parser.add_argument(
        "--compare-unpatched", action="store_true", help="also run the graph as exported"
    )
    parser.add_argument("--compare-spin", action="store_true", help="also run with ORT spinning")
    return asyncio.run(amain(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
