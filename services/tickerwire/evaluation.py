"""Retrieval evaluation: stream a QA corpus through the real pipeline, then score the questions.

``tickerwire eval --dataset DIR --output DIR`` runs :func:`run_eval`. The dataset has the shape of
``shared/data/tatqa``: ``corpus.jsonl`` (``id``, ``title``, ``text``) and ``questions.jsonl``
(``id``, ``question``, ``relevant_ids``). The corpus goes through Kafka, the preprocess, embed and
index stages of a real ``tickerwire up`` process into a fresh collection; the questions are then
asked through the same search use case the API serves, in each mode.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tickerwire.core.errors import ConfigError
from tickerwire.core.ports import SearchMode
from tickerwire.core.settings import Settings

MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")
METRICS = ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10")
EVAL_PUBLISHED_AT = "2020-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Question:
    """One question and the ids of the passages that answer it."""

    id: str
    text: str
    relevant: frozenset[str]


@dataclass
class Dataset:
    """A corpus of passages and the questions asked of it."""

    corpus: list[dict[str, Any]]
    questions: list[Question]


def load_dataset(directory: Path, *, limit: int | None = None) -> Dataset:
    """Read ``corpus.jsonl`` and ``questions.jsonl``; ConfigError says what is missing."""
    corpus_path, questions_path = directory / "corpus.jsonl", directory / "questions.jsonl"
    for path in (corpus_path, questions_path):
        if not path.is_file():
            raise ConfigError(
                f"{path} is missing: a dataset needs corpus.jsonl and questions.jsonl"
            )
    corpus = [json.loads(line) for line in corpus_path.read_text("utf-8").splitlines() if line]
    questions = [
        Question(str(q["id"]), str(q["question"]), frozenset(map(str, q["relevant_ids"])))
        for q in (
            json.loads(line) for line in questions_path.read_text("utf-8").splitlines() if line
        )
        if q.get("relevant_ids")
    ]
    if limit is not None:
        questions = questions[:limit]
    return Dataset(corpus=corpus, questions=questions)


def corpus_documents(corpus: Iterable[dict[str, Any]], *, titles: bool) -> list[dict[str, Any]]:
    """raw-document/v1 records for the passages (one document per passage)."""
    return [
        {
            "schema": "raw-document/v1",
            "doc_id": str(row["id"]),
            "op": "upsert",
            "version": 1,
            "source": "eval",
            "doc_type": "filing",
            "title": str(row.get("title", "")) if titles else "",
            "body": str(row["text"]),
            "content_type": "text/plain",
            "published_at": EVAL_PUBLISHED_AT,
            "tickers": [],
            "metadata": {"dataset_doc_type": row.get("doc_type")},
        }
        for row in corpus
    ]


# --- scoring (pure) -----------------------------------------------------------------------------


def dedupe(doc_ids: Iterable[str]) -> list[str]:
    """Document ids in first-seen order (several chunks of one document count once)."""
    seen: set[str] = set()
    out: list[str] = []
    for d in doc_ids:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def score(ranked: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    """hit@1/5/10, recall@10, MRR@10 and nDCG@10 (binary relevance) of one ranking."""
    top = list(ranked[:10])
    hits = [d in relevant for d in top]
    first = next((i for i, h in enumerate(hits) if h), None)
    dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits) if h)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {
        "hit@1": float(any(hits[:1])),
        "hit@5": float(any(hits[:5])),
        "hit@10": float(any(hits)),
        "recall@10": sum(hits) / len(relevant),
        "mrr@10": 1.0 / (first + 1) if first is not None else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over all questions, rounded to 4 places."""
    if not rows:
        return dict.fromkeys(METRICS, 0.0)
    return {m: round(sum(r[m] for r in rows) / len(rows), 4) for m in METRICS}


# --- running the pipeline -----------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A ``tickerwire up`` child process; stopped by its recorded pid only."""

    env: dict[str, str]
    http_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=30.0)

    def start(self, timeout: float = 180.0) -> None:
        exe = str(Path(sys.executable).with_name("tickerwire"))
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [exe, "up"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"the worker exited early; see {self.log_path}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ConfigError(f"the worker did not become ready in {timeout:.0f}s; see {self.log_path}")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` that carry ``labels``."""
        total = 0.0
        for family in text_string_to_metric_families(self.client.get("/metrics").text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
        self.client.close()


async def _produce(
    bootstrap: str, docs: list[dict[str, Any]], advance: Callable[[int], None]
) -> None:
    from tickerwire.produce.producer import DocumentProducer

    async with DocumentProducer(bootstrap) as producer:
        for start in range(0, len(docs), 500):
            batch = docs[start : start + 500]
            await producer.send_batch(batch)
            advance(len(batch))


@dataclass
class EvalResult:
    """Metrics per mode, plus how the run went."""

    modes: dict[str, dict[str, float]]
    info: dict[str, Any]


def run_eval(
    settings: Settings,
    dataset_dir: Path,
    output: Path,
    *,
    bootstrap: str | None = None,
    titles: bool = False,
    limit: int | None = None,
    console: Console | None = None,
    ingest_timeout_s: float = 3600.0,
    work_dir: Path | None = None,
) -> EvalResult:
    """Ingest the corpus through a real worker into a fresh collection, then score every mode.

    Without ``bootstrap`` a private Kafka broker is started (and stopped) in a temporary folder,
    so nothing else on the topics mixes into the collection. The collection lives in a temporary
    folder that is removed afterwards, unless ``work_dir`` names a folder to keep it in
    (``<work_dir>/data``, collection name in ``eval.json`` under ``_run``).
    """
    from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs
    from tickerwire.adapters.kafka_broker import LocalBroker, free_loopback_ports

    console = console or Console(stderr=True)
    data = load_dataset(dataset_dir, limit=limit)
    docs = corpus_documents(data.corpus, titles=titles)
    output.mkdir(parents=True, exist_ok=True)
    keep = work_dir is not None
    work = work_dir if work_dir is not None else Path(tempfile.mkdtemp(prefix="tickerwire-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    broker: LocalBroker | None = None
    worker: WorkerProcess | None = None
    info: dict[str, Any] = {
        "documents": len(docs),
        "questions": len(data.questions),
        "titles": titles,
        "embedder": settings.embedder,
        "backend": "server" if settings.qdrant_url else "edge",
    }
    try:
        if bootstrap is None:
            ports = free_loopback_ports(2)
            broker = LocalBroker(
                ports[0],
                work / "kafka",
                settings.kafka_dir / "libs",
                settings.kafka_heap,
                controller_port=ports[1],
            )
            console.print("starting a private Kafka broker…")
            broker.up(timeout=180)
            bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap, load_topic_specs()))
        collection = f"eval_{uuid.uuid4().hex[:8]}"
        info["collection"] = collection
        port = free_loopback_ports(1)[0]
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TICKERWIRE_KAFKA_BOOTSTRAP": bootstrap,
            "TICKERWIRE_DATA_DIR": str(work / "data"),
            "TICKERWIRE_APP_ID": collection,
            "TICKERWIRE_COLLECTION": collection,
            "TICKERWIRE_HTTP_PORT": str(port),
            "TICKERWIRE_LOG_LEVEL": "warning",
        }
        worker = WorkerProcess(env=env, http_port=port, log_path=output / "eval-worker.log")
        console.print("starting the pipeline worker…")
        worker.start()
        started = time.perf_counter()
        with _progress(console) as progress:
            sent = progress.add_task("produce", total=len(docs))
            done = progress.add_task("index", total=len(docs))
            asyncio.run(_produce(bootstrap, docs, lambda n: progress.advance(sent, n)))
            deadline = time.monotonic() + ingest_timeout_s
            while True:
                applied = worker.metric("tickerwire_index_commits_applied_total")
                dead = worker.metric("tickerwire_dlq_records_total")
                progress.update(done, completed=min(applied + dead, len(docs)))
                if applied + dead >= len(docs):
                    break
                if time.monotonic() > deadline:
                    raise ConfigError(f"ingest did not finish in {ingest_timeout_s:.0f}s")
                time.sleep(1.0)
        info["ingest_seconds"] = round(time.perf_counter() - started, 1)
        info["dead_lettered"] = int(dead)
        info["points"] = int(worker.client.get("/v1/status").json()["points"])
        worker.stop()
        worker = None
        query_settings = settings.model_copy(
            update={"data_dir": work / "data", "collection": collection}
        )
        modes = asyncio.run(_ask_all(query_settings, data.questions, console))
        result = EvalResult(modes=modes, info=info)
        write_report(result, output)
        print_table(result, console)
        return result
    finally:
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.down()
        if keep:
            shutil.rmtree(work / "kafka", ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


async def _ask_all(
    settings: Settings,
    questions: Sequence[Question],
    console: Console,
) -> dict[str, dict[str, float]]:
    from tickerwire.runtime import open_resources

    res = await open_resources(settings, with_index=True)
    try:
        search = res.search_service()
        out: dict[str, dict[str, float]] = {}
        with _progress(console) as progress:
            for mode in MODES:
                task = progress.add_task(mode, total=len(questions))
                rows = []
                for q in questions:
                    found = await search.search(q.text, k=30, mode=mode)
                    ranked = dedupe(str(h.payload.get("doc_id")) for h in found.hits)
                    rows.append(score(ranked, q.relevant))
                    progress.advance(task)
                out[mode] = mean_scores(rows)
        return out
    finally:
        await res.aclose()


def write_report(result: EvalResult, output: Path) -> None:
    """``eval.json`` (metrics per mode, plus run info under ``_run``) and ``eval.png``."""
    payload: dict[str, Any] = {**result.modes, "_run": result.info}
    (output / "eval.json").write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(result.modes)
    for i, (mode, metrics) in enumerate(result.modes.items()):
        xs = [j + i * width for j in range(len(METRICS))]
        bars = ax.bar(xs, [metrics[m] for m in METRICS], width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([j + width for j in range(len(METRICS))], METRICS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"retrieval quality ({result.info.get('questions')} questions)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output / "eval.png", dpi=120)
    plt.close(fig)


def print_table(result: EvalResult, console: Console) -> None:
    """The metrics as a table on the console."""
    table = Table(title="retrieval quality")
    table.add_column("mode")
    for m in METRICS:
        table.add_column(m, justify="right")
    for mode, metrics in result.modes.items():
        table.add_row(mode, *(f"{metrics[m]:.3f}" for m in METRICS))
    console.print(table)
