"""What chunking alone costs: semantic-text-splitter over the MiniLM tokenizer, per chunk.

Splits TAT-QA documents of about ``--words`` words the way preprocess does (256-token budget minus
a title, 32 tokens of overlap) and, for comparison, tokenizes each whole document once. The
splitter releases the GIL, so ``cores × 1000 / ms_per_chunk`` is the most chunks/s it allows
when it has every core to itself. Writes ``bench/results/splitter.json``::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/splitter_bench.py [--docs 40] [--words 2000]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from common import (
    DEFAULT_CORPUS,
    ZeroEmbedder,
    environment,
    load_passages,
    table,
    write_json,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=240, help="body token budget")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tokenizer = ZeroEmbedder()  # the MiniLM tokenizer, as preprocess uses it; no model
    texts = [p.text for p in load_passages(DEFAULT_CORPUS, args.docs, target_words=args.words)]
    splitter = tokenizer.splitter(args.capacity, args.overlap)
    split_s = encode_s = float("inf")
    chunks = 0
    for _ in range(args.repeats):
        started = time.perf_counter()
        chunks = sum(len(splitter.chunks(t)) for t in texts)
        split_s = min(split_s, time.perf_counter() - started)
        started = time.perf_counter()
        for t in texts:
            tokenizer.count_tokens(t)
        encode_s = min(encode_s, time.perf_counter() - started)
    cores = len(os.sched_getaffinity(0))
    ms_per_chunk = 1000 * split_s / chunks
    mean_words = round(sum(len(t.split()) for t in texts) / len(texts))
    result: dict[str, Any] = {
        "benchmark": "splitter",
        "environment": environment(),
        "params": vars(args) | {"mean_words": mean_words},
        "chunks_per_doc": round(chunks / len(texts), 1),
        "split_ms_per_doc": round(1000 * split_s / len(texts), 2),
        "split_ms_per_chunk": round(ms_per_chunk, 3),
        "tokenize_whole_doc_ms": round(1000 * encode_s / len(texts), 2),
        "max_chunks_per_s_on_all_cores": round(cores * 1000 / ms_per_chunk),
    }
    print(
        table(
            [
                ("documents × words", f"{len(texts)} × {mean_words}"),
                ("chunks per document", result["chunks_per_doc"]),
                ("split, ms per document", result["split_ms_per_doc"]),
                ("split, ms per chunk", result["split_ms_per_chunk"]),
                ("tokenize whole document once, ms", result["tokenize_whole_doc_ms"]),
                (
                    f"MAX CHUNKS/S, splitter alone, {cores} cores",
                    result["max_chunks_per_s_on_all_cores"],
                ),
            ],
            "Chunking cost (semantic-text-splitter, MiniLM tokenizer)",
        )
    )
    print(f"\nwrote {write_json('splitter', result)}")


if __name__ == "__main__":
    main()
