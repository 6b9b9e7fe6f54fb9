"""Framework floor: the same worker, broker and raw documents as the ceiling, stages doing no work.

Preprocess turns each raw record into ``--chunks-per-doc`` chunk-sized payloads and a commit-sized
one, embed turns each chunk payload into a vector-sized one (sizes of real records of the
one-chunk documents: 1.2 KB and 10 KB) and passes the commit on, index only counts. What is left
is the framework itself (faust and aiokafka, the sequencer, batching, acknowledged sends): the
most any stage code on top of it could reach. Writes ``bench/results/pipeline_floor.json``::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_floor.py --docs 3000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from common import (
    CpuMeter,
    InProcessWorker,
    bounded,
    environment,
    load_passages,
    pipeline_parser,
    produce_before_worker,
    run_benchmark,
    table,
    zero_session,
)
from tickerwire.core.settings import Settings
from tickerwire.runtime import Resources
from tickerwire.stages.app import FaustSender, Handler, StageName
from tickerwire.stages.base import CHUNKS_TOPIC, VECTORS_TOPIC, InMsg, OutMsg


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

    async with zero_session("floor", args.log_level) as b:
        docs, produce_s = await produce_before_worker(b.settings, passages, "floor", args.timeout)
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = pipeline_parser(__doc__.split("\n\n")[0] if __doc__ else "", docs=3000, words=0)
    parser.add_argument("--chunks-per-doc", type=int, default=1, help="chunk records per document")
    run_benchmark("pipeline_floor", parser.parse_args(argv), floor, print_floor)


if __name__ == "__main__":
    main()
