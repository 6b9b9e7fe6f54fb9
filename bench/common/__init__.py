"""Shared parts of the benchmarks (not tests); ``from common import ...`` in every bench script.

Everything a benchmark needs to run the real worker in-process against a private Kafka broker:

* :mod:`.corpus`: where results go, and realistic raw documents packed from TAT-QA
  (:func:`load_passages`, :func:`raw_document`);
* :mod:`.worker`: :func:`private_broker` (a :class:`LocalBroker` on free loopback ports in a temp
  dir, with the topics of ``schemas/topics.yaml``, stopped by its recorded pid),
  :func:`bench_session` (broker, settings and resources), :class:`InProcessWorker` (the faust app
  of ``tickerwire up --no-http`` in this event loop), the producer and embedder-alone helpers;
* :mod:`.zero_embedder`: :class:`ZeroEmbedder`, the zero-cost embedder of the framework benches;
* :mod:`.instruments`: :class:`TimedIndex`, :class:`TimedEmbedder` and :class:`StageTimer` wrap
  the real adapters and stage handlers to record *when* things happen, without touching the
  package;
* :mod:`.report`: percentiles, Prometheus samples, a text table, CPU meters and the JSON writer.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common.corpus import (
    DEFAULT_CORPUS,
    KAFKA_LIBS,
    LOOPBACK,
    REPO_ROOT,
    RESULTS_DIR,
    Passage,
    load_passages,
    raw_document,
)
from common.instruments import StageStats, StageTimer, TimedEmbedder, TimedIndex
from common.report import (
    CpuMeter,
    bounded,
    bucket_quantile,
    environment,
    histogram_quantile,
    histogram_snapshot,
    log,
    percentile,
    proc_cpu_seconds,
    sample,
    stage_rows,
    table,
    write_json,
)
from common.worker import (
    BenchSession,
    InProcessWorker,
    bench_session,
    bench_settings,
    embed_alone,
    embed_texts_of,
    open_bench_resources,
    pipeline_parser,
    private_broker,
    produce,
    produce_before_worker,
    result_name,
    run_benchmark,
    zero_session,
)
from common.zero_embedder import ZeroEmbedder

__all__ = [
    "DEFAULT_CORPUS",
    "KAFKA_LIBS",
    "LOOPBACK",
    "REPO_ROOT",
    "RESULTS_DIR",
    "BenchSession",
    "CpuMeter",
    "InProcessWorker",
    "Passage",
    "StageStats",
    "StageTimer",
    "TimedEmbedder",
    "TimedIndex",
    "ZeroEmbedder",
    "bench_session",
    "bench_settings",
    "bounded",
    "bucket_quantile",
    "embed_alone",
    "embed_texts_of",
    "environment",
    "histogram_quantile",
    "histogram_snapshot",
    "load_passages",
    "log",
    "open_bench_resources",
    "percentile",
    "pipeline_parser",
    "private_broker",
    "proc_cpu_seconds",
    "produce",
    "produce_before_worker",
    "raw_document",
    "result_name",
    "run_benchmark",
    "sample",
    "stage_rows",
    "table",
    "write_json",
    "zero_session",
]
