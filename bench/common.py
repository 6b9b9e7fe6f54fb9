"""Shared helpers for the pipeline benchmarks (not tests).

Everything a benchmark needs to run the real worker in-process against a private Kafka broker:

* :func:`private_broker` starts a :class:`LocalBroker` on free loopback ports in a temp dir,
  creates the topics of ``schemas/topics.yaml`` and stops the broker by its recorded pid;
* :func:`load_passages` / :func:`raw_document` build realistic raw documents from TAT-QA;
* :class:`TimedIndex`, :class:`TimedEmbedder` and :class:`StageTimer` wrap the real adapters and
  stage handlers to record *when* things happen (commit applied per document, embedder busy
  time, per-stage handler time) without touching the package;
* :class:`InProcessWorker` builds the faust app with :func:`tickerwire.stages.app.build_app` and
  runs it in the current event loop (what ``tickerwire up --no-http`` runs, minus the signals);
* small reporting helpers: percentiles, a text table and the JSON writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import faust
from prometheus_client import REGISTRY

from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs
from tickerwire.adapters.kafka_broker import LocalBroker, free_loopback_ports
from tickerwire.core.ports import (
    Embedder,
    HybridParams,
    Point,
    ScoredHit,
    SearchFilters,
    SearchMode,
    SparseVector,
    Splitter,
    VectorIndex,
    Watermark,
)
from tickerwire.core.settings import Settings
from tickerwire.runtime import Resources, make_handlers
from tickerwire.stages.app import ALL_STAGES, Handler, StageDeps, StageName, build_app
from tickerwire.stages.base import InMsg

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
#: The project's jar cache (shared with the tests), so no benchmark downloads anything.
KAFKA_LIBS = REPO_ROOT / ".tickerwire" / "kafka" / "libs"
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "tatqa" / "corpus.jsonl"

LOOPBACK = "127.0.0.1"


# --- broker ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_broker(
    workdir: Path, *, heap: str = "512m", partitions: int = 3
) -> AsyncIterator[LocalBroker]:
    """A fresh single-node KRaft broker with tickerwire's topics; stopped (by its pid) on exit."""
    port, controller_port = free_loopback_ports(2)
    broker = LocalBroker(
        port,
        workdir / "kafka",
        KAFKA_LIBS,
        heap,
        controller_port=controller_port,
        partitions=partitions,
    )
    started = time.perf_counter()
    result = await asyncio.to_thread(broker.up, 180.0)
    log(
        f"kafka broker pid {result.status.pid} on {broker.bootstrap} "
        f"({time.perf_counter() - started:.1f}s)"
    )
    try:
        await ensure_topics(broker.bootstrap, load_topic_specs(), partitions=partitions)
        yield broker
    finally:
        # LocalBroker.down stops exactly the pid it recorded in its own pid file.
        await asyncio.to_thread(broker.down, 30.0)
        log(f"kafka broker pid {result.status.pid} stopped")


# --- documents ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passage:
    title: str
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


def _read_corpus(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_passages(path: Path, count: int, *, target_words: int = 200) -> list[Passage]:
    """``count`` passages of about ``target_words`` words, packed from consecutive corpus rows.

    TAT-QA paragraphs average about 40 words, so consecutive paragraphs (and tables) of the same
    report are joined with blank lines until the target is reached. When the corpus runs out the
    passages repeat (documents get distinct ids, so their chunks are still distinct points).
    ``target_words <= 0`` returns the corpus rows one by one (short documents).
    """
    rows = _read_corpus(path)
    packed: list[Passage] = []
    if target_words <= 0:
        packed = [Passage(r["title"], r["text"].strip()) for r in rows if r["text"].strip()]
    else:
        current: list[str] = []
        words = 0
        title = ""
        for row in rows:
            text = row["text"].strip()
            n = len(text.split())
            if not text or n > target_words * 1.2:
                continue  # one giant table is not a "200-word passage"
            if current and words + n > target_words * 1.2:
                packed.append(Passage(title, "\n\n".join(current)))
                current, words = [], 0
            if not current:
                title = f"Annual report {row['doc_name'].removeprefix('tatqa-')}"
            current.append(text)
            words += n
            if words >= target_words * 0.9:
                packed.append(Passage(title, "\n\n".join(current)))
                current, words = [], 0
    if not packed:
        raise ValueError(f"no passages in {path}")
    return [packed[i % len(packed)] for i in range(count)]


def raw_document(doc_id: str, passage: Passage, *, version: int = 1) -> dict[str, Any]:
    """A raw-document/v1 upsert for ``passage``."""
    return {
        "schema": "raw-document/v1",
        "doc_id": doc_id,
        "op": "upsert",
        "version": version,
        "source": "bench",
        "doc_type": "filing",
        "title": passage.title,
        "body": passage.text,
        "content_type": "text/plain",
        "published_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "tickers": [],
        "language": "en",
    }


# --- instrumentation ------------------------------------------------------------------------


class TimedIndex:
    """A VectorIndex that records when each document's commit was applied (wall clock)."""

    def __init__(self, inner: VectorIndex) -> None:
        self.inner = inner
        self.commit_applied: dict[str, float] = {}
        self.upserted = 0
        self.upsert_calls = 0
        self.upsert_seconds = 0.0
        self.delete_calls = 0
        self.delete_seconds = 0.0
        self._waiters: list[tuple[set[str], asyncio.Future[None]]] = []

    # recording -------------------------------------------------------------------------------

    async def wait_for(self, doc_ids: set[str], limit_s: float) -> bool:
        """Wait until every doc in ``doc_ids`` has had a commit applied; False on timeout."""
        missing = doc_ids - self.commit_applied.keys()
        if not missing:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((missing, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), limit_s)
        except TimeoutError:
            return False
        finally:
            self._waiters = [(s, f) for s, f in self._waiters if f is not fut]
        return True

    def _applied(self, doc_id: str) -> None:
        self.commit_applied.setdefault(doc_id, time.time())
        for missing, fut in self._waiters:
            missing.discard(doc_id)
            if not missing and not fut.done():
                fut.set_result(None)

    # VectorIndex -------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self.inner.backend

    async def ensure_collection(self, dim: int) -> None:
        await self.inner.ensure_collection(dim)

    async def upsert(self, points: Sequence[Point]) -> None:
        started = time.perf_counter()
        await self.inner.upsert(points)
        self.upsert_seconds += time.perf_counter() - started
        self.upsert_calls += 1
        self.upserted += len(points)

    async def delete_document_except(self, doc_id: str, keep: Sequence[str]) -> int:
        return await self.apply_commits([(doc_id, keep)])

    async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        started = time.perf_counter()
        removed = await self.inner.apply_commits(commits)
        self.delete_seconds += time.perf_counter() - started
        self.delete_calls += 1
        for doc_id, _ in commits:
            self._applied(doc_id)
        return removed

    async def document_point_ids(self, doc_id: str) -> set[str]:
        return await self.inner.document_point_ids(doc_id)

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        return await self.inner.get_document(doc_id)

    async def search(
        self,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVector | None,
        mode: SearchMode,
        filters: SearchFilters,
        limit: int,
        hybrid: HybridParams,
    ) -> list[ScoredHit]:
        return await self.inner.search(
            dense=dense, sparse=sparse, mode=mode, filters=filters, limit=limit, hybrid=hybrid
        )

    async def top_by(
        self,
        *,
        field: str,
        direction: Literal["asc", "desc"],
        filters: SearchFilters,
        limit: int,
    ) -> list[ScoredHit]:
        return await self.inner.top_by(
            field=field, direction=direction, filters=filters, limit=limit
        )

    async def count(self, filters: SearchFilters | None = None) -> int:
        return await self.inner.count(filters)

    async def all_point_ids(self) -> set[str]:
        return await self.inner.all_point_ids()

    async def watermark(self) -> Watermark:
        return await self.inner.watermark()

    async def needs_optimize(self) -> bool:
        return await self.inner.needs_optimize()

    async def optimize(self) -> None:
        await self.inner.optimize()

    async def aclose(self) -> None:
        await self.inner.aclose()


class TimedEmbedder:
    """An Embedder that records each embed_documents call: (start, end, texts)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[tuple[float, float, int]] = []

    def reset(self) -> None:
        self.calls.clear()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        return self.inner.splitter(capacity, overlap)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        started = time.perf_counter()
        out = await self.inner.embed_documents(texts)
        self.calls.append((started, time.perf_counter(), len(texts)))
        return out

    async def embed_query(self, text: str) -> list[float]:
        return await self.inner.embed_query(text)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def busy(self, since: float = 0.0, until: float = float("inf")) -> tuple[float, int, int]:
        """(seconds inside embed_documents, calls, texts) for calls that started in the window."""
        sel = [c for c in self.calls if since <= c[0] <= until]
        return sum(e - s for s, e, _ in sel), len(sel), sum(n for _, _, n in sel)


@dataclass
class StageStats:
    calls: int = 0
    records: int = 0
    seconds: float = 0.0
    first_start: float | None = None
    last_end: float | None = None
    max_batch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "records": self.records,
            "busy_s": round(self.seconds, 4),
            "mean_batch": round(self.records / self.calls, 2) if self.calls else 0.0,
            "max_batch": self.max_batch,
        }


@dataclass
class StageTimer:
    """Wraps the stage handlers faust calls, to time each batch (perf_counter clock)."""

    stats: dict[str, StageStats] = field(default_factory=dict)
    #: When set, doc_id → {stage: wall-clock end of the last batch that held one of its records}.
    track_docs: bool = False
    done_at: dict[str, dict[str, float]] = field(default_factory=dict)

    def reset(self) -> None:
        self.stats.clear()
        self.done_at.clear()

    def wrap(self, name: str, handler: Handler) -> Handler:
        async def timed(batch: Sequence[InMsg]) -> None:
            st = self.stats.setdefault(name, StageStats())
            started = time.perf_counter()
            if st.first_start is None:
                st.first_start = started
            try:
                await handler(batch)
            finally:
                ended = time.perf_counter()
                st.calls += 1
                st.records += len(batch)
                st.seconds += ended - started
                st.max_batch = max(st.max_batch, len(batch))
                st.last_end = ended
                if self.track_docs:
                    now = time.time()
                    for msg in batch:
                        if msg.doc_id is not None:
                            self.done_at.setdefault(msg.doc_id, {})[name] = now

        return timed

    def as_dict(self) -> dict[str, Any]:
        return {name: st.as_dict() for name, st in sorted(self.stats.items())}


# --- the worker, in-process -----------------------------------------------------------------


class InProcessWorker:
    """The tickerwire faust app (all stages) running in this event loop.

    ``tickerwire up --no-http`` runs the same ``build_app(StageDeps(...))`` with the same
    ``make_handlers``; here the handlers are wrapped by a :class:`StageTimer` and the app is
    started with ``app.start()`` instead of a signal-handling ``faust.Worker``.
    """

    def __init__(
        self,
        settings: Settings,
        res: Resources,
        *,
        stages: tuple[StageName, ...] = ALL_STAGES,
        timer: StageTimer | None = None,
    ) -> None:
        self.settings = settings
        self.res = res
        self.stages = stages
        self.timer = timer or StageTimer()
        self.app: faust.App | None = None
        self.started_at: float | None = None
        self.ready_at: float | None = None

    def _factory(self) -> Callable[[faust.App, Any], dict[StageName, Handler]]:
        inner = make_handlers(self.res, self.stages)

        def factory(app: faust.App, table: Any) -> dict[StageName, Handler]:
            handlers: dict[StageName, Handler] = inner(app, table)
            return {name: self.timer.wrap(name, h) for name, h in handlers.items()}

        return factory

    async def start(self, limit_s: float = 120.0) -> None:
        app = build_app(
            StageDeps(
                settings=self.settings,
                stages=self.stages,
                make_handlers=self._factory(),
                app_id=self.settings.app_id,
            )
        )
        ready = asyncio.Event()

        async def on_ready() -> None:
            ready.set()

        app.on_startup_finished = on_ready
        app.in_worker = True
        self.app = app
        self.started_at = time.perf_counter()
        await app.start()
        await asyncio.wait_for(ready.wait(), limit_s)
        self.ready_at = time.perf_counter()

    async def stop(self, limit_s: float = 60.0) -> None:
        if self.app is None:
            return
        try:
            await asyncio.wait_for(self.app.stop(), limit_s)
        except TimeoutError:
            log(f"faust app did not stop within {limit_s}s")
        self.app = None


# --- reporting ------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress line on stderr (tables and results go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def histogram_quantile(name: str, q: float, labels: dict[str, str] | None = None) -> float:
    """Prometheus-style quantile estimate from a histogram in this process's registry."""
    buckets: list[tuple[float, float]] = []
    for metric in REGISTRY.collect():
        for s in metric.samples:
            if s.name != f"{name}_bucket":
                continue
            if labels and any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            buckets.append((float(s.labels["le"]), s.value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            span = count - prev_count
            frac = (rank - prev_count) / span if span else 1.0
            return prev_le + (le - prev_le) * frac
        prev_le, prev_count = le, count
    return buckets[-1][0]


def histogram_snapshot(name: str) -> dict[str, float]:
    """``{le: cumulative count}`` plus ``sum``/``count`` of an unlabelled histogram."""
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for s in metric.samples:
            if s.name == f"{name}_bucket":
                out[s.labels["le"]] = s.value
            elif s.name in (f"{name}_sum", f"{name}_count"):
                out[s.name.removeprefix(f"{name}_")] = s.value
    return out


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one Prometheus sample in this process (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def table(rows: Sequence[tuple[str, Any]], title: str) -> str:
    """A two-column text table."""
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": cores,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": "shared machine: other processes may compete for the cores (see loadavg)",
    }


def proc_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of ``pid`` (this process when None) from /proc."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


async def bounded(coro: Awaitable[Any], seconds: float, what: str) -> Any:
    """Await ``coro`` at most ``seconds``; TimeoutError names ``what``."""
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        raise TimeoutError(f"{what} did not finish within {seconds:.0f}s") from None


class CpuMeter:
    """CPU seconds of this process and of the broker JVM over a phase, with the load average."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self._start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self._start = (
            time.perf_counter(),
            proc_cpu_seconds(),
            proc_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0,
        )

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._start[0]
        own = proc_cpu_seconds() - self._start[1]
        broker = (proc_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0) - self._start[2]
        return {
            "wall_s": round(wall, 3),
            "process_cpu_s": round(own, 3),
            "broker_cpu_s": round(broker, 3),
            "process_cores_used": round(own / wall, 2) if wall else 0.0,
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        }
