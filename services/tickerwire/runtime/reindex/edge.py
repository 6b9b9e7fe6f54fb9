"""The Edge side of the rebuild: build into the staging directory, then swap it in, offline or
handed over to the worker that owns the live shard (:mod:`tickerwire.adapters.edge_handover`)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import structlog

from tickerwire.adapters import edge_handover as ho
from tickerwire.adapters.edge_layout import current_shard
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.core.errors import ConfigError
from tickerwire.runtime.reindex.chain import Job, RebuildRun, ReindexReport
from tickerwire.runtime.reindex.checkpoint import open_checkpoint

log = structlog.get_logger("tickerwire.runtime.reindex")

#: The Edge worker answers a handover within a poll (1 s); this bounds each wait for it.
HANDOVER_WAIT_S = 120.0


async def reindex_edge(job: Job) -> ReindexReport:
    """Rebuild into ``<edge dir>/reindex`` and (``job.swap``) swap it in."""
    started = time.perf_counter()
    root = job.settings.edge_dir
    staging = ho.staging_root(root)
    if job.restart:
        shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)
    ho.clear_request(root)  # a worker journaling for an earlier attempt stops
    checkpoint, resumed = open_checkpoint(staging / "checkpoint.sqlite", job.settings, job.restart)
    old = current_shard(root)
    report = ReindexReport(
        backend="edge", old=None if old is None else old.name, new=str(staging), resumed=resumed
    )
    target = EdgeIndex(staging, optimize_min_unindexed=job.settings.index_optimize_min_unindexed)
    try:
        await target.ensure_collection(job.embedder.dim)
        async with RebuildRun(job, target, checkpoint) as run:
            await run.catch_up()
            if job.swap:
                report.points = await _swap(root, target, job.embedder.dim, run)
                report.swapped = True
                new = current_shard(root)
                report.new = "" if new is None else new.name
            else:
                report.points = await target.count()
            report.records, report.dead_lettered = run.records, run.dead_lettered
    finally:
        checkpoint.close()
        await target.aclose()
        ho.clear_request(root)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


async def _swap(root: Path, target: EdgeIndex, dim: int, run: RebuildRun) -> int:
    """Swap the staged shard in: offline when no worker owns the live one, else through it.
    Returns the rebuilt index's points."""
    lock = ho.live_owner_free(root)
    if lock is not None:
        try:
            # No worker runs (and none can start): what it left unprocessed it will process
            # into the new shard; what it processed last is caught up here.
            await run.catch_up()
            points = await target.count()
            await target.aclose()
            await asyncio.to_thread(ho.adopt_offline, root)
        finally:
            lock.release()
        log.info("reindex_swapped_offline", path=str(current_shard(root)))
        return points
    ho.Handover("prepare", dim).write(root)
    token = str((await _answer(root, "journaling", lambda ack: "token" in ack))["token"])
    # The worker journals its writes from now on: catch up to the ends measured after that.
    await run.catch_up()
    points = await target.count()
    await target.aclose()
    ho.Handover("ready", dim, token).write(root)
    await _answer(root, "swap", lambda ack: not ho.staging_root(root).exists())
    return points


async def _answer(root: Path, what: str, done: Any) -> dict[str, Any]:
    """Wait until ``done(ack)`` holds for the worker's answer; a refusal or silence fails."""
    deadline = time.monotonic() + HANDOVER_WAIT_S
    while True:
        ack = ho.read_ack(root) or {}
        if "refused" in ack:
            raise ConfigError(f"the worker refused the swap: {ack['refused']}")
        if done(ack):
            return ack
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the worker that owns {root} did not {what} in {HANDOVER_WAIT_S:.0f}s "
                "(is it running the index stage?)"
            )
        await asyncio.sleep(0.2)
