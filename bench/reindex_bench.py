"""Re-index throughput: how fast ``tickerwire reindex`` rebuilds an index from the raw topic.

Produces ``--docs`` (1,000) documents of about 200 words (packed TAT-QA passages) into a private
Kafka broker, measures the embedder alone on exactly the chunk texts the rebuild will embed (its
ceiling), then runs the rebuild (the stage handlers chained in one process, SQLite checkpoint
after each batch, Qdrant Edge, offline swap) twice: a first build, then a rebuild with other
chunking over the same topic, as ``tickerwire reindex`` would after a settings change. Writes
``bench/results/reindex.json``::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/reindex_bench.py --docs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    DEFAULT_CORPUS,
    embed_alone,
    embed_texts_of,
    environment,
    load_passages,
    log,
    private_broker,
    produce,
    raw_document,
    table,
    write_json,
)
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.core.logging import configure_logging
from tickerwire.core.settings import Settings
from tickerwire.runtime.reindex import reindex


async def _rebuild(settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    report = await reindex(settings)
    seconds = time.perf_counter() - started
    return {
        "chunk_tokens": settings.chunk_tokens,
        "records": report.records,
        "points": report.points,
        "seconds": round(seconds, 2),
        "records_per_s": round(report.records / seconds, 1),
        "points_per_s": round(report.points / seconds, 1),
        "swapped": report.swapped,
    }


async def main(docs: int, corpus: Path) -> dict[str, Any]:
    configure_logging(fmt="json", level="warning", service=True)
    passages = load_passages(corpus, docs)
    raw = [raw_document(f"rx-{i:06d}", p) for i, p in enumerate(passages)]
    with tempfile.TemporaryDirectory(prefix="tw-bench-reindex-") as tmp:
        workdir = Path(tmp)
        async with private_broker(workdir) as broker:
            settings = Settings(
                data_dir=workdir / "data", kafka_bootstrap=broker.bootstrap, app_id="bench-rx"
            )
            produce_s = await produce(broker.bootstrap, raw)
            embedder = open_embedder(settings)
            try:
                texts, _ = embed_texts_of(raw, settings, embedder)
                alone = await embed_alone(embedder, texts, settings.embed_batch_size)
            finally:
                await embedder.aclose()
            first = await _rebuild(settings)
            second = await _rebuild(settings.model_copy(update={"chunk_tokens": 128}))
    ceiling = float(alone["chunks_per_s"])
    return {
        "environment": environment(),
        "docs": docs,
        "produce_seconds": round(produce_s, 2),
        "embedder_alone_chunks_per_s": round(ceiling, 1),
        "build": first,
        "rebuild_other_chunking": second,
        "share_of_embedder_ceiling": round(first["points_per_s"] / ceiling, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    result = asyncio.run(main(args.docs, args.corpus))
    path = write_json("reindex", result)
    build, again = result["build"], result["rebuild_other_chunking"]
    rows = [
        ("docs", result["docs"]),
        ("embedder alone (chunks/s)", result["embedder_alone_chunks_per_s"]),
        (
            "build: records / points / s",
            f"{build['records']} / {build['points']} / {build['seconds']}",
        ),
        ("build: points/s", build["points_per_s"]),
        ("rebuild at 128 tokens: points / s", f"{again['points']} / {again['seconds']}"),
        ("share of the embedder's ceiling", result["share_of_embedder_ceiling"]),
    ]
    print(table(rows, "tickerwire reindex"))
    log(f"wrote {path}")
