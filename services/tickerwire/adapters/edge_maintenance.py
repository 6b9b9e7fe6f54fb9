"""Maintenance of an Edge index: optimize in a child process, journal the writes, swap it in.

``EdgeShard.optimize()`` holds the GIL for its whole run (measured: a 10 ms ticker thread got 2
ticks in 13.4 s), so the serving process never calls it: :meth:`EdgeMaintenance.optimize` copies
the shard, optimizes the copy in a niced child process (``python -m`` this module), replays the
writes journaled meanwhile onto it and swaps it in. See docs/index-maintenance.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from tickerwire.adapters.edge_layout import current_shard, generation, point_link, shard_dir_name
from tickerwire.core.errors import VectorIndexError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import INDEX_OPTIMIZE_SECONDS

BACKEND = "edge"
_NAMED_VECTORS = 2  # dense + sparse; Edge counts both in indexed_vectors_count

_T = TypeVar("_T")
log = get_logger(__name__)


class Journal:
    """The writes applied while an optimization runs, to be replayed onto the optimized copy.

    Off (``ops`` is None) until :meth:`start`; past ``max_points`` written points it turns off
    for good, which tells the optimization to drop its copy. Only the shard's executor touches it.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self.ops: list[qe.UpdateOperation] | None = None
        self._points = 0

    def start(self) -> None:
        """Start recording (empty)."""
        self.ops, self._points = [], 0

    def stop(self) -> None:
        """Stop recording and forget what was recorded."""
        self.ops, self._points = None, 0

    def record(self, op: qe.UpdateOperation, points: int) -> None:
        """Record an applied ``op`` that wrote ``points`` points, when recording."""
        if self.ops is not None:
            self.ops.append(op)
            self._points += points
            if self._points > self.max_points:
                self.stop()


class EdgeMaintenance:
    """The optimize policy and procedure of :class:`~tickerwire.adapters.index_edge.EdgeIndex`.

    A base class over the index's state: the index provides the shard, its executor and the
    ``current`` link (the abstract methods below).
    """

    _root: Path
    _shard: qe.EdgeShard | None
    _shard_dir: Path | None
    _dim: int | None
    _executor: Any
    _write_lock: asyncio.Lock
    _optimize_lock: asyncio.Lock
    _journal: Journal
    _min_unindexed: int
    _niceness: int
    _max_journal_points: int
    _unindexed_after_optimize: int
    #: The token of the reindex handover this process journals for (None: none).
    _handover_token: str | None = None

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        raise NotImplementedError

    def _live(self) -> qe.EdgeShard:
        raise NotImplementedError

    def _config(self, dim: int) -> qe.EdgeConfig:
        raise NotImplementedError

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
            build = self._root / shard_dir_name(generation(live_dir) + 1)
            started = time.perf_counter()
            async with self._write_lock:
                await self._run(self._live().flush)
                await asyncio.to_thread(shutil.rmtree, build, True)
                await asyncio.to_thread(shutil.copytree, live_dir, build)
                await self._run(self._journal.start)
            copied = time.perf_counter() - started
            try:
                child = await self._optimize_child(build)
                async with self._write_lock:
                    swap_started = time.perf_counter()
                    swapped = await self._run(self._swap_sync, build)
                    swap = time.perf_counter() - swap_started
            finally:
                await self._run(self._journal.stop)
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
        ops = self._journal.ops
        if ops is None or self._dim is None:
            return False
        fresh = qe.EdgeShard.load(str(build), self._config(self._dim))
        try:
            for op in ops:
                fresh.update(op)
            fresh.flush()
            point_link(self._root, build)
        except BaseException:
            fresh.close()
            raise
        old, self._shard, self._shard_dir = self._live(), fresh, build
        self._journal.stop()
        old.close()
        return True

    async def adopt_handover(self) -> bool:
        """Take part in a ``tickerwire reindex`` handover (see :mod:`edge_handover`); True once
        the rebuilt shard is live. Cheap when nothing is asked (one small file read).

        On ``prepare``: hold the optimize lock (an optimization in progress finishes first),
        start the journal and answer with a token. On ``ready`` with that token: move the
        staged shard in, replay the journal, re-point ``current``, drop the old shard. A request
        that goes away, or a ``ready`` with another token (this process did not journal for
        it), ends the handover without a swap.
        """
        from tickerwire.adapters import edge_handover as ho

        request = ho.Handover.read(self._root)
        token = self._handover_token
        if token is not None and (
            request is None
            or request.token not in (None, token)
            or self._journal.ops is None  # it overflowed: the rebuild took too long to finish
        ):
            await self._end_handover()
            token = None
        if request is None:
            return False
        if request.phase == "prepare" and token is not None and ho.read_ack(self._root) is None:
            ho.write_ack(self._root, token=token)  # reindex restarted: journaling goes on
            return False
        if request.phase == "prepare" and token is None:
            if request.dim != self._dim:
                ho.write_ack(
                    self._root,
                    refused=f"the rebuilt index has {request.dim} dimensions and this worker "
                    f"embeds with {self._dim}: stop the worker, then run reindex again",
                )
                return False
            await self._optimize_lock.acquire()
            await self._run(self._journal.start)
            self._handover_token = ho.new_token()
            ho.write_ack(self._root, token=self._handover_token)
            log.info("edge_handover_journaling", token=self._handover_token)
            return False
        if request.phase == "ready" and token is not None:
            return await self._swap_handover()
        if request.phase == "ready" and "refused" not in (ho.read_ack(self._root) or {}):
            ho.write_ack(self._root, refused="this worker did not journal for the handover")
        return False

    async def _end_handover(self) -> None:
        await self._run(self._journal.stop)
        self._handover_token = None
        self._optimize_lock.release()

    async def _swap_handover(self) -> bool:
        from tickerwire.adapters import edge_handover as ho

        staged = current_shard(ho.staging_root(self._root))
        live_dir = self._shard_dir
        try:
            if staged is None or live_dir is None or self._journal.ops is None:
                reason = "no rebuilt shard" if staged is None else "too many writes meanwhile"
                ho.write_ack(self._root, refused=reason)
                return False
            started = time.perf_counter()
            async with self._write_lock:
                build = await asyncio.to_thread(ho.move_in, self._root, staged)
                swapped = await self._run(self._swap_sync, build)
            if not swapped:
                await asyncio.to_thread(shutil.rmtree, build, True)
                ho.write_ack(self._root, refused="too many writes meanwhile")
                return False
            await asyncio.to_thread(shutil.rmtree, live_dir, True)
            await asyncio.to_thread(shutil.rmtree, ho.staging_root(self._root), True)
            self._unindexed_after_optimize = 0
            stats = await self.stats()
            log.info(
                "edge_handover_swapped",
                seconds=round(time.perf_counter() - started, 3),
                path=str(build),
                **stats,
            )
            return True
        finally:
            if self._handover_token is not None:
                await self._end_handover()


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this child when the worker that started it dies. A worker
    killed mid-optimize must not leave a child writing into a build directory that the next
    start deletes and the next optimize reuses."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the call: nothing to optimize for
        os._exit(1)


def _optimize_main(path: str, niceness: int) -> None:
    """Child-process entry: optimize the closed shard at ``path`` and print a JSON summary."""
    _die_with_parent()
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
        sys.exit(
            "usage: python -m tickerwire.adapters.edge_maintenance optimize SHARD_DIR NICENESS"
        )
    _optimize_main(sys.argv[2], int(sys.argv[3]))
