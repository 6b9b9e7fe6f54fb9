"""VectorIndex on Qdrant Edge: the Qdrant engine in-process, on local disk (the default back end).

Layout of the index directory (``settings.edge_dir``)::

    tickerwire.lock     fcntl lock: one owning process; holds the owner's pid
    current             symlink to the live shard directory
    shard-000001/       an Edge shard (segments, WAL, edge_config.json)
    shard-000002/       while an optimization runs: the copy being optimized

Every Edge call is synchronous and runs on one single-thread executor, so calls are serialized
and never run on the event loop. ``EdgeShard.optimize()`` holds the GIL for its whole run
(measured: a 10 ms ticker thread got 2 ticks in 13.4 s), so :meth:`EdgeIndex.optimize` never
calls it in this process: it copies the shard, optimizes the copy in a child process, replays
the writes made meanwhile onto it and swaps it in. See docs/index-maintenance.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Literal, TypeVar, cast
from uuid import UUID

import qdrant_edge as qe

from tickerwire.adapters.index_common import (
    DENSE,
    PAYLOAD_INDEXES,
    SCROLL_PAGE,
    SPARSE,
    Condition,
    MatchAnyCond,
    by_chunk_index,
    check_search_args,
    check_top_by_args,
    filter_conditions,
    float_or_none,
    stored_payload,
    to_hit,
)
from tickerwire.core.closing import AsyncClosing
from tickerwire.core.errors import ConfigError, TickerwireError, VectorIndexError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import (
    INDEX_DELETES,
    INDEX_OPTIMIZE_SECONDS,
    INDEX_POINTS,
    INDEX_UPSERTS,
    INDEX_WRITE_SECONDS,
    INDEX_WRITES,
)
from tickerwire.core.ports import (
    HybridParams,
    Point,
    ScoredHit,
    SearchFilters,
    SearchMode,
    SparseVector,
    Watermark,
)

BACKEND = "edge"
LOCK_FILE = "tickerwire.lock"
CURRENT_LINK = "current"
_SHARD_PREFIX = "shard-"
_NAMED_VECTORS = 2  # dense + sparse; Edge counts both in indexed_vectors_count

_T = TypeVar("_T")
log = get_logger(__name__)

_EDGE_SCHEMAS = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "float": qe.PayloadSchemaType.Float,
    "integer": qe.PayloadSchemaType.Integer,
}
_EDGE_DIRECTIONS = {"asc": qe.Direction.Asc, "desc": qe.Direction.Desc}


def _shard_dir_name(generation: int) -> str:
    return f"{_SHARD_PREFIX}{generation:06d}"


def _generation(path: Path) -> int:
    return int(path.name.removeprefix(_SHARD_PREFIX))


def _edge_id(point_id: str) -> UUID:
    try:
        return UUID(point_id)
    except ValueError as exc:
        raise VectorIndexError(f"point id {point_id!r} is not a UUID") from exc


def _edge_condition(cond: Condition) -> qe.FieldCondition:
    if isinstance(cond, MatchAnyCond):
        values = cast("list[str] | list[int]", list(cond.values))
        return qe.FieldCondition(cond.key, match=qe.MatchAny(values))
    return qe.FieldCondition(cond.key, range=qe.RangeFloat(gte=cond.gte, lt=cond.lt, lte=cond.lte))


def edge_filter(filters: SearchFilters | None) -> qe.Filter | None:
    """The Edge filter for ``filters`` (None when nothing is filtered)."""
    conds = filter_conditions(filters)
    if not conds:
        return None
    return qe.Filter(must=[_edge_condition(c) for c in conds])


def _doc_filter(doc_id: str, keep: Sequence[str] = ()) -> qe.Filter:
    must: list[qe.FieldCondition] = [qe.FieldCondition("doc_id", match=qe.MatchValue(doc_id))]
    if not keep:
        return qe.Filter(must=list(must))
    return qe.Filter(must=list(must), must_not=[qe.HasIdCondition({_edge_id(pid) for pid in keep})])


def _edge_sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), list(vector.values))


def _edge_point(point: Point) -> qe.Point:
    # Per point this is on the hot path (measured, 384-d, a 15-key payload: ~45 us, nearly all
    # of it the binding converting the payload). The binding parses the id string itself (a bad
    # one fails the batch as VectorIndexError) and converts each dense element to f32 (ints and
    # numpy scalars too), so neither a UUID() nor a per-element float() (~6 us) is done here.
    dense = point.dense
    return qe.Point(
        point.id,
        {
            DENSE: dense if isinstance(dense, list) else list(dense),
            SPARSE: _edge_sparse(point.sparse),
        },
        stored_payload(point),
    )


def edge_config(
    dim: int, *, indexing_threshold_kb: int | None = None, indexing_threads: int = 0
) -> qe.EdgeConfig:
    """The shard configuration: named dense (cosine) and sparse (IDF) vectors, WAL on."""
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(
            m=16, ef_construct=100, full_scan_threshold=10_000,
            max_indexing_threads=indexing_threads,
        ),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb),
        wal_enabled=True,
    )  # fmt: skip


class _OwnerLock:
    """An exclusive, non-blocking fcntl lock on ``dir/tickerwire.lock``, held until release."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"the Qdrant Edge shard at {self.path.parent} is in use by another process "
                f"(pid {owner}); Edge allows one owning process per shard directory. Stop it, "
                "or point TICKERWIRE_DATA_DIR elsewhere, or use TICKERWIRE_QDRANT_URL."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class EdgeIndex(AsyncClosing):
    """VectorIndex over one Qdrant Edge shard that this process owns.

    Open with :meth:`ensure_collection` (creates or loads the shard and takes the directory
    lock); close with :meth:`aclose` or use ``async with``. Maintenance: call
    :meth:`needs_optimize` now and then and, when it says so, :meth:`optimize`; neither stalls
    the event loop, and reads and writes keep working while the optimization runs.
    """

    def __init__(
        self,
        path: Path,
        *,
        optimize_min_unindexed: int = 20_000,
        optimize_niceness: int = 10,
        optimize_max_journal_points: int = 200_000,
        indexing_threshold_kb: int | None = None,
        indexing_threads: int = 0,
    ) -> None:
        """``path`` is the index directory; the optimize knobs are described in the docs.

        ``optimize_min_unindexed``: un-indexed points before :meth:`needs_optimize` says yes.
        ``optimize_niceness``: nice increment of the optimizing child process.
        ``optimize_max_journal_points``: points written during an optimization beyond which
        the optimized copy is thrown away (bounds the memory of the replay journal).
        """
        self._root = Path(path)
        self._min_unindexed = optimize_min_unindexed
        self._niceness = optimize_niceness
        self._max_journal_points = optimize_max_journal_points
        self._threshold_kb = indexing_threshold_kb
        self._threads = indexing_threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = _OwnerLock(self._root)
        self._shard: qe.EdgeShard | None = None
        self._shard_dir: Path | None = None
        self._dim: int | None = None
        self._write_lock = asyncio.Lock()
        self._optimize_lock = asyncio.Lock()
        self._journal: list[qe.UpdateOperation] | None = None
        self._journal_points = 0
        self._journal_overflow = False
        self._unindexed_after_optimize = 0
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """``edge``."""
        return BACKEND

    @property
    def path(self) -> Path:
        """The index directory (holds the lock file and the shard generations)."""
        return self._root

    async def ensure_collection(self, dim: int) -> None:
        """Load the shard, or create it when the directory has none; never recreate one.

        Raises ConfigError when another process owns the directory or the stored dimension
        differs from ``dim``.
        """
        if self._closed:
            raise VectorIndexError("the Edge index is closed")
        if self._shard is not None:
            if dim != self._dim:
                raise ConfigError(f"the Edge shard has dim {self._dim}, not {dim}")
            return
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-shard")
        try:
            await self._run(self._open_sync, dim)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            self._lock.release()
            raise
        self._dim = dim

    def _open_sync(self, dim: int) -> None:
        config = edge_config(
            dim, indexing_threshold_kb=self._threshold_kb, indexing_threads=self._threads
        )
        link = self._root / CURRENT_LINK
        if link.is_symlink():
            shard_dir = self._root / link.readlink()
            try:
                shard = qe.EdgeShard.load(str(shard_dir), config)
            except Exception as exc:
                raise ConfigError(f"cannot load the Edge shard at {shard_dir}: {exc}") from exc
            created = False
        else:
            shard_dir = self._root / _shard_dir_name(1)
            if shard_dir.exists():  # a crash between create and link: start it over
                shutil.rmtree(shard_dir)
            shard = qe.EdgeShard.create(str(shard_dir), config)
            created = True
        try:
            present = set(shard.info().payload_schema)
            for name, kind in PAYLOAD_INDEXES:
                if name not in present:
                    shard.update(qe.UpdateOperation.create_field_index(name, _EDGE_SCHEMAS[kind]))
            if created:
                shard.flush()
                self._point_link(shard_dir)
        except BaseException:
            shard.close()
            raise
        self._shard, self._shard_dir = shard, shard_dir
        self._remove_stale_dirs()
        info = shard.info()
        INDEX_POINTS.labels(BACKEND).set(info.points_count)
        log.info(
            "edge_shard_opened",
            path=str(shard_dir),
            created=created,
            points=info.points_count,
            segments=info.segments_count,
        )

    def _point_link(self, shard_dir: Path) -> None:
        """Atomically point ``current`` at ``shard_dir`` (symlink + rename)."""
        tmp = self._root / f"{CURRENT_LINK}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(shard_dir.name)
        tmp.replace(self._root / CURRENT_LINK)
        fd = os.open(self._root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_stale_dirs(self) -> None:
        """Delete shard generations other than the live one (left by a crash or a swap)."""
        for child in self._root.glob(f"{_SHARD_PREFIX}*"):
            if child.is_dir() and child != self._shard_dir:
                shutil.rmtree(child, ignore_errors=True)

    async def aclose(self) -> None:
        """Flush and close the shard, stop the executor and release the lock; idempotent."""
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_sync)
            executor.shutdown(wait=True)
        self._lock.release()

    def _close_sync(self) -> None:
        if self._shard is not None:
            try:
                self._shard.flush()
            finally:
                self._shard.close()
                self._shard = None

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            raise VectorIndexError("the Edge index is not open; call ensure_collection first")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except TickerwireError:
            raise
        except Exception as exc:
            raise VectorIndexError(f"Qdrant Edge failed: {exc}") from exc

    def _live(self) -> qe.EdgeShard:
        if self._shard is None:
            raise VectorIndexError("the Edge index is not open; call ensure_collection first")
        return self._shard

    # --- writes ---------------------------------------------------------------------------------

    def _journal_op(self, op: qe.UpdateOperation, points: int) -> None:
        """Record an applied ``op`` when an optimization is in flight (it is replayed later)."""
        if self._journal is not None:
            self._journal.append(op)
            self._journal_points += points
            if self._journal_points > self._max_journal_points:
                self._journal, self._journal_overflow = None, True

    def _upsert_sync(self, points: Sequence[Point]) -> None:
        op = qe.UpdateOperation.upsert_points([_edge_point(p) for p in points])
        shard = self._live()
        shard.update(op)
        self._journal_op(op, len(points))
        # info() reads counters only (~3 us at 50k points), so the gauge is exact per write.
        INDEX_POINTS.labels(BACKEND).set(shard.info().points_count)

    async def upsert(self, points: Sequence[Point]) -> None:
        """Write points (idempotent per id); returns once Edge applied them and logged the WAL."""
        if not points:
            return
        async with self._write_lock:
            start = time.perf_counter()
            await self._run(self._upsert_sync, points)
        INDEX_WRITE_SECONDS.labels(BACKEND, "upsert").observe(time.perf_counter() - start)
        INDEX_WRITES.labels(BACKEND, "upsert").inc()
        INDEX_UPSERTS.labels(BACKEND).inc(len(points))

    def _commits_sync(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        """One filtered delete per commit, in order; the deleted count is the drop in points.

        Every filter is built (and every kept id checked) before anything is applied. The shard
        is owned by this process and this executor runs one job at a time, so the drop in
        ``points_count`` across the job is exactly what the deletes removed; INDEX_DELETES and
        INDEX_POINTS are updated from it even when an update fails part way.
        """
        ops = [
            qe.UpdateOperation.delete_points_by_filter(_doc_filter(doc_id, keep))
            for doc_id, keep in commits
        ]
        shard = self._live()
        before = shard.info().points_count
        try:
            for op in ops:
                shard.update(op)
                self._journal_op(op, 0)
        finally:
            after = shard.info().points_count
            deleted = max(0, before - after)
            INDEX_POINTS.labels(BACKEND).set(after)
            INDEX_DELETES.labels(BACKEND).inc(deleted)
        return deleted

    async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        """Apply the commits in order as one executor job; return how many points went.

        One ``delete_points_by_filter`` per commit (~15 us each on Edge), no per-document count
        or info; the total comes from ``points_count`` before and after. An empty call is a
        no-op that records no write.
        """
        batch = [(doc_id, tuple(keep)) for doc_id, keep in commits]
        if not batch:
            return 0
        async with self._write_lock:
            start = time.perf_counter()
            deleted = await self._run(self._commits_sync, batch)
        INDEX_WRITE_SECONDS.labels(BACKEND, "delete").observe(time.perf_counter() - start)
        INDEX_WRITES.labels(BACKEND, "delete").inc()
        return deleted

    async def delete_document_except(self, doc_id: str, keep: Sequence[str]) -> int:
        """Delete the points of ``doc_id`` not in ``keep`` (all of them when it is empty)."""
        return await self.apply_commits([(doc_id, keep)])

    # --- reads ----------------------------------------------------------------------------------

    def _scroll_sync(self, flt: qe.Filter | None, payload: bool) -> list[ScoredHit]:
        shard = self._live()
        hits: list[ScoredHit] = []
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=SCROLL_PAGE, filter=flt, with_payload=payload)
            )
            hits.extend(to_hit(r.id, 0.0, r.payload) for r in records)
            if offset is None:
                return hits

    async def document_point_ids(self, doc_id: str) -> set[str]:
        """Ids of the points stored for ``doc_id``."""
        hits = await self._run(self._scroll_sync, _doc_filter(doc_id), False)
        return {h.id for h in hits}

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        """Every point of ``doc_id`` with its payload, ordered by ``chunk_index``."""
        return by_chunk_index(await self._run(self._scroll_sync, _doc_filter(doc_id), True))

    async def all_point_ids(self) -> set[str]:
        """Every point id in the shard."""
        return {h.id for h in await self._run(self._scroll_sync, None, False)}

    async def count(self, filters: SearchFilters | None = None) -> int:
        """Exact number of points matching ``filters``."""
        request = qe.CountRequest(exact=True, filter=edge_filter(filters))
        return await self._run(lambda: self._live().count(request))

    async def count_documents(self) -> int:
        """Distinct documents in the index: every document has exactly one chunk 0."""
        request = qe.CountRequest(
            exact=True,
            filter=qe.Filter(must=[qe.FieldCondition("chunk_index", match=qe.MatchValue(0))]),
        )
        return await self._run(lambda: self._live().count(request))

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
        """Top ``limit`` hits; hybrid fuses filtered dense and sparse prefetches by weighted RRF."""
        check_search_args(mode, dense, sparse is not None and bool(sparse.indices), limit)
        flt = edge_filter(filters)
        dense_q = None if dense is None else qe.Query.Nearest([float(x) for x in dense], DENSE)
        sparse_q = None if sparse is None else qe.Query.Nearest(_edge_sparse(sparse), SPARSE)
        if mode == "hybrid":
            assert dense_q is not None and sparse_q is not None
            depth = max(hybrid.prefetch, limit)
            request = qe.QueryRequest(
                limit=limit,
                prefetches=[
                    qe.Prefetch(limit=depth, query=dense_q, filter=flt),
                    qe.Prefetch(limit=depth, query=sparse_q, filter=flt),
                ],
                # The stub types `query` as `Fusion`, but the runtime wants `Fusion.Rrf(...)`.
                query=qe.Fusion.Rrf(  # type: ignore[arg-type]
                    k=hybrid.rrf_k, weights=[hybrid.dense_weight, hybrid.sparse_weight]
                ),
                filter=flt,
                with_payload=True,
            )
        else:
            request = qe.QueryRequest(
                limit=limit,
                query=dense_q if mode == "dense" else sparse_q,
                filter=flt,
                with_payload=True,
            )
        points = await self._run(lambda: self._live().query(request))
        return [to_hit(p.id, p.score, p.payload) for p in points]

    def _max_sync(self, key: str) -> float | None:
        records, _ = self._live().scroll(
            qe.ScrollRequest(
                limit=1,
                with_payload=[key],
                order_by=qe.OrderBy(key, direction=qe.Direction.Desc),
            )
        )
        return float_or_none(records[0].order_value) if records else None

    async def top_by(
        self,
        *,
        field: str,
        direction: Literal["asc", "desc"],
        filters: SearchFilters,
        limit: int,
    ) -> list[ScoredHit]:
        """At most ``limit`` points matching ``filters``, ordered by ``field`` through its float
        index (Edge order-by); points without the field are skipped; score is the field value."""
        check_top_by_args(field, direction, limit)
        request = qe.ScrollRequest(
            limit=limit,
            filter=edge_filter(filters),
            with_payload=True,
            order_by=qe.OrderBy(field, direction=_EDGE_DIRECTIONS[direction]),
        )
        records, _ = await self._run(lambda: self._live().scroll(request))
        return [to_hit(r.id, float(r.order_value or 0.0), r.payload) for r in records]

    async def watermark(self) -> Watermark:
        """Newest ``published_ts`` and ``indexed_ts`` (order_by on their float indexes)."""
        return Watermark(
            published_ts=await self._run(self._max_sync, "published_ts"),
            indexed_ts=await self._run(self._max_sync, "indexed_ts"),
        )

    # --- maintenance ----------------------------------------------------------------------------

    def _stats_sync(self) -> dict[str, int]:
        info = self._live().info()
        unindexed = max(0, info.points_count * _NAMED_VECTORS - info.indexed_vectors_count)
        return {
            "points": info.points_count,
            "segments": info.segments_count,
            "indexed_vectors": info.indexed_vectors_count,
            "unindexed_points": unindexed,
        }

    async def stats(self) -> dict[str, int]:
        """Points, segments, indexed vectors and points without an HNSW index (brute-forced)."""
        return await self._run(self._stats_sync)

    async def needs_optimize(self) -> bool:
        """True when enough points are searched by brute force to make an optimize worth it.

        That is at least ``optimize_min_unindexed`` un-indexed points, and as many more than
        were left un-indexed by the last optimize (segments under the indexing threshold stay
        plain, so this keeps the policy from looping).
        """
        if self._optimize_lock.locked():
            return False
        unindexed = (await self.stats())["unindexed_points"]
        return (
            unindexed >= self._min_unindexed
            and unindexed - self._unindexed_after_optimize >= self._min_unindexed
        )

    async def optimize(self) -> None:
        """Build HNSW and merge segments in a child process, then swap the result in.

        Steps: flush, copy the live shard with writes held (reads go on), optimize the copy in a
        niced child process while reads and writes go on against the live shard and every write
        is journaled, then (writes held, reads queued) load the copy, replay the journal, flush
        and atomically re-point ``current``. This process never runs ``EdgeShard.optimize()``, so
        its GIL and event loop stay free. If more than ``optimize_max_journal_points`` points are
        written meanwhile, the copy is dropped and the live shard stays as it was.
        """
        async with self._optimize_lock:
            live_dir = self._shard_dir
            if live_dir is None or self._executor is None:
                raise VectorIndexError("the Edge index is not open; call ensure_collection first")
            build = self._root / _shard_dir_name(_generation(live_dir) + 1)
            started = time.perf_counter()
            async with self._write_lock:
                await self._run(self._live().flush)
                await asyncio.to_thread(shutil.rmtree, build, True)
                await asyncio.to_thread(shutil.copytree, live_dir, build)
                await self._run(self._start_journal)
            copied = time.perf_counter() - started
            try:
                child = await self._optimize_child(build)
                async with self._write_lock:
                    swap_started = time.perf_counter()
                    swapped = await self._run(self._swap_sync, build)
                    swap = time.perf_counter() - swap_started
            finally:
                await self._run(self._stop_journal)
            if not swapped:
                await asyncio.to_thread(shutil.rmtree, build, True)
                log.warning(
                    "edge_optimize_dropped",
                    reason="too many writes during the optimization",
                    max_journal_points=self._max_journal_points,
                )
                return
            await asyncio.to_thread(shutil.rmtree, live_dir, True)
            stats = await self.stats()
            self._unindexed_after_optimize = stats["unindexed_points"]
            elapsed = time.perf_counter() - started
            INDEX_OPTIMIZE_SECONDS.labels(BACKEND).observe(elapsed)
            log.info(
                "edge_optimized",
                seconds=round(elapsed, 3),
                copy_seconds=round(copied, 3),
                child_seconds=child.get("seconds"),
                swap_seconds=round(swap, 3),
                path=str(build),
                **stats,
            )

    def _start_journal(self) -> None:
        self._journal, self._journal_points, self._journal_overflow = [], 0, False

    def _stop_journal(self) -> None:
        self._journal, self._journal_points = None, 0

    async def _optimize_child(self, build: Path) -> dict[str, Any]:
        """Run ``EdgeShard.optimize()`` on ``build`` in a child process; kill it if cancelled."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            "optimize",
            str(build),
            str(self._niceness),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await proc.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            await asyncio.to_thread(shutil.rmtree, build, True)
            raise
        if proc.returncode != 0:
            await asyncio.to_thread(shutil.rmtree, build, True)
            tail = err.decode(errors="replace").strip()[-2000:]
            raise VectorIndexError(f"Edge optimize child exited {proc.returncode}: {tail}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def _swap_sync(self, build: Path) -> bool:
        """Make the optimized copy the live shard, with every journaled write replayed onto it."""
        if self._journal is None or self._journal_overflow or self._dim is None:
            return False
        config = edge_config(
            self._dim, indexing_threshold_kb=self._threshold_kb, indexing_threads=self._threads
        )
        fresh = qe.EdgeShard.load(str(build), config)
        try:
            for op in self._journal:
                fresh.update(op)
            fresh.flush()
            self._point_link(build)
        except BaseException:
            fresh.close()
            raise
        old, self._shard, self._shard_dir = self._live(), fresh, build
        self._journal = None
        old.close()
        return True


def _optimize_main(path: str, niceness: int) -> None:
    """Child-process entry: optimize the closed shard at ``path`` and print a JSON summary."""
    os.nice(niceness)
    started = time.perf_counter()
    shard = qe.EdgeShard.load(path)
    changed = shard.optimize()
    shard.flush()
    info = shard.info()
    shard.close()
    summary = {
        "seconds": round(time.perf_counter() - started, 3),
        "changed": changed,
        "points": info.points_count,
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
    }
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":  # pragma: no cover - runs in the optimize child process
    if len(sys.argv) != 4 or sys.argv[1] != "optimize":
        sys.exit("usage: python -m tickerwire.adapters.index_edge optimize SHARD_DIR NICENESS")
    _optimize_main(sys.argv[2], int(sys.argv[3]))
