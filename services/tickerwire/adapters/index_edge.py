"""VectorIndex on Qdrant Edge: the Qdrant engine in-process, on local disk (the default back end).

The index directory (``settings.edge_dir``) is laid out as :mod:`edge_layout` says.
Every Edge call is synchronous and runs on one single-thread executor, so calls are serialized
and never run on the event loop. Conversions to Edge types live in :mod:`edge_convert`, the
directory lock in :mod:`edge_lock`, and optimization (child process, journal, swap) in
:mod:`edge_maintenance`. See docs/index-maintenance.md.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import UUID

import qdrant_edge as qe

from tickerwire.adapters import index_common as common
from tickerwire.adapters.edge_convert import (
    EDGE_DIRECTIONS,
    EDGE_SCHEMAS,
    doc_filter,
    edge_config,
    edge_filter,
    edge_id,
    edge_point,
    edge_sparse,
)
from tickerwire.adapters.edge_layout import (
    CURRENT_LINK,
    SHARD_PREFIX,
    point_link,
    shard_dir_name,
)
from tickerwire.adapters.edge_lock import OwnerLock
from tickerwire.adapters.edge_maintenance import BACKEND, EdgeMaintenance, Journal
from tickerwire.adapters.index_common import SearchTemplate
from tickerwire.core.closing import AsyncClosing
from tickerwire.core.errors import ConfigError, TickerwireError, VectorIndexError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import INDEX_DELETES, INDEX_POINTS
from tickerwire.core.ports import IndexQuery, Point, ScoredHit, SearchFilters, Watermark

_T = TypeVar("_T")
log = get_logger(__name__)


class EdgeIndex(SearchTemplate, EdgeMaintenance, AsyncClosing):
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
        self._lock = OwnerLock(self._root)
        self._shard: qe.EdgeShard | None = None
        self._shard_dir: Path | None = None
        self._dim: int | None = None
        self._write_lock = asyncio.Lock()
        self._optimize_lock = asyncio.Lock()
        self._journal = Journal(optimize_max_journal_points)
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
        config = self._config(dim)
        link = self._root / CURRENT_LINK
        if link.is_symlink():
            shard_dir = self._root / link.readlink()
            try:
                shard = qe.EdgeShard.load(str(shard_dir), config)
            except Exception as exc:
                raise ConfigError(f"cannot load the Edge shard at {shard_dir}: {exc}") from exc
            created = False
        else:
            shard_dir = self._root / shard_dir_name(1)
            if shard_dir.exists():  # a crash between create and link: start it over
                shutil.rmtree(shard_dir)
            shard = qe.EdgeShard.create(str(shard_dir), config)
            created = True
        try:
            present = set(shard.info().payload_schema)
            for name, kind in common.PAYLOAD_INDEXES:
                if name not in present:
                    shard.update(qe.UpdateOperation.create_field_index(name, EDGE_SCHEMAS[kind]))
            if created:
                shard.flush()
                point_link(self._root, shard_dir)
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

    def _config(self, dim: int) -> qe.EdgeConfig:
        return edge_config(
            dim, indexing_threshold_kb=self._threshold_kb, indexing_threads=self._threads
        )

    def _remove_stale_dirs(self) -> None:
        """Delete shard generations other than the live one (left by a crash or a swap)."""
        for child in self._root.glob(f"{SHARD_PREFIX}*"):
            if child.is_dir() and child != self._shard_dir:
                shutil.rmtree(child, ignore_errors=True)

    async def _close(self) -> None:
        """Flush and close the shard, stop the executor and release the lock."""
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

    def _upsert_sync(self, points: Sequence[Point]) -> None:
        op = qe.UpdateOperation.upsert_points([edge_point(p) for p in points])
        shard = self._live()
        shard.update(op)
        self._journal.record(op, len(points))
        # info() reads counters only (~3 us at 50k points), so the gauge is exact per write.
        INDEX_POINTS.labels(BACKEND).set(shard.info().points_count)

    async def upsert(self, points: Sequence[Point]) -> None:
        """Write points (idempotent per id); returns once Edge applied them and logged the WAL."""
        if not points:
            return
        async with self._write_lock:
            with common.timed_write(BACKEND, "upsert", upserted=len(points)):
                await self._run(self._upsert_sync, points)

    def _commits_sync(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        """One filtered delete per commit, in order; the deleted count is the drop in points.

        Every filter is built (and every kept id checked) before anything is applied. The shard
        is owned by this process and this executor runs one job at a time, so the drop in
        ``points_count`` across the job is exactly what the deletes removed; INDEX_DELETES and
        INDEX_POINTS are updated from it even when an update fails part way.
        """
        ops = [
            qe.UpdateOperation.delete_points_by_filter(doc_filter(doc_id, keep))
            for doc_id, keep in commits
        ]
        shard = self._live()
        before = shard.info().points_count
        try:
            for op in ops:
                shard.update(op)
                self._journal.record(op, 0)
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
            with common.timed_write(BACKEND, "delete"):
                return await self._run(self._commits_sync, batch)

    async def refresh_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """One filtered ``set_payload`` per point (a missing point matches nothing), as one
        executor job, journaled like every other write."""
        batch = [(edge_id(point_id), common.stored_fields(fields)) for point_id, fields in updates]
        if not batch:
            return
        async with self._write_lock:
            with common.timed_write(BACKEND, "payload"):
                await self._run(self._refresh_sync, batch)

    def _refresh_sync(self, batch: Sequence[tuple[UUID, dict[str, Any]]]) -> None:
        shard = self._live()
        for point_id, fields in batch:
            op = qe.UpdateOperation.set_payload_by_filter(
                qe.Filter(must=[qe.HasIdCondition({point_id})]), fields
            )
            shard.update(op)
            self._journal.record(op, 0)

    # --- reads ----------------------------------------------------------------------------------

    def _scroll_sync(self, flt: qe.Filter | None, payload: bool) -> list[ScoredHit]:
        shard = self._live()
        hits: list[ScoredHit] = []
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=common.SCROLL_PAGE, filter=flt, with_payload=payload
                )
            )
            hits.extend(common.to_hit(r.id, 0.0, r.payload) for r in records)
            if offset is None:
                return hits

    async def document_point_ids(self, doc_id: str) -> set[str]:
        """Ids of the points stored for ``doc_id``."""
        hits = await self._run(self._scroll_sync, doc_filter(doc_id), False)
        return {h.id for h in hits}

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        """Every point of ``doc_id`` with its payload, ordered by ``chunk_index``."""
        return common.by_chunk_index(await self._run(self._scroll_sync, doc_filter(doc_id), True))

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

    async def _query(self, query: IndexQuery) -> list[ScoredHit]:
        flt = edge_filter(query.filters)
        dense_q = (
            None
            if query.dense is None
            else qe.Query.Nearest([float(x) for x in query.dense], common.DENSE)
        )
        sparse_q = (
            None
            if query.sparse is None
            else qe.Query.Nearest(edge_sparse(query.sparse), common.SPARSE)
        )
        if query.mode == "hybrid":
            assert dense_q is not None and sparse_q is not None
            depth = max(query.hybrid.prefetch, query.limit)
            request = qe.QueryRequest(
                limit=query.limit,
                prefetches=[
                    qe.Prefetch(limit=depth, query=dense_q, filter=flt),
                    qe.Prefetch(limit=depth, query=sparse_q, filter=flt),
                ],
                # The stub types `query` as `Fusion`, but the runtime wants `Fusion.Rrf(...)`.
                query=qe.Fusion.Rrf(  # type: ignore[arg-type]
                    k=query.hybrid.rrf_k,
                    weights=[query.hybrid.dense_weight, query.hybrid.sparse_weight],
                ),
                filter=flt,
                with_payload=True,
            )
        else:
            request = qe.QueryRequest(
                limit=query.limit,
                query=dense_q if query.mode == "dense" else sparse_q,
                filter=flt,
                with_payload=True,
            )
        points = await self._run(lambda: self._live().query(request))
        return [common.to_hit(p.id, p.score, p.payload) for p in points]

    def _max_sync(self, key: str) -> float | None:
        records, _ = self._live().scroll(
            qe.ScrollRequest(
                limit=1,
                with_payload=[key],
                order_by=qe.OrderBy(key, direction=qe.Direction.Desc),
            )
        )
        return common.float_or_none(records[0].order_value) if records else None

    async def _ordered(
        self, field: str, direction: Literal["asc", "desc"], filters: SearchFilters, limit: int
    ) -> list[ScoredHit]:
        request = qe.ScrollRequest(
            limit=limit,
            filter=edge_filter(filters),
            with_payload=True,
            order_by=qe.OrderBy(field, direction=EDGE_DIRECTIONS[direction]),
        )
        records, _ = await self._run(lambda: self._live().scroll(request))
        return [common.to_hit(r.id, float(r.order_value or 0.0), r.payload) for r in records]

    async def watermark(self) -> Watermark:
        """Newest ``published_ts`` and ``indexed_ts`` (order_by on their float indexes)."""
        return Watermark(
            published_ts=await self._run(self._max_sync, "published_ts"),
            indexed_ts=await self._run(self._max_sync, "indexed_ts"),
        )
