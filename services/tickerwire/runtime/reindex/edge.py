"""The Edge side of the rebuild: build into the staging directory, then swap it in, offline or
handed over to the worker that owns the live shard (:mod:`tickerwire.adapters.edge_handover`)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from tickerwire.adapters import edge_handover as ho
from tickerwire.adapters.edge_layout import current_shard
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.kafka_options import KafkaConnection
from tickerwire.adapters.topic_replay import TopicReplay
from tickerwire.core.errors import ConfigError
from tickerwire.core.ports import Embedder
from tickerwire.core.settings import Settings
from tickerwire.runtime.reindex.chain import (
    Progress,
    Rebuild,
    ReindexReport,
    build,
    final_catch_up,
)
from tickerwire.runtime.reindex.checkpoint import Checkpoint, open_checkpoint

log = structlog.get_logger("tickerwire.runtime.reindex")


#: The Edge worker answers a handover within a poll (1 s); this bounds each wait for it.
HANDOVER_WAIT_S = 120.0


async def reindex_edge(
    settings: Settings,
    conn: KafkaConnection,
    embedder: Embedder,
    progress: Progress | None,
    restart: bool,
    swap: bool,
) -> ReindexReport:
    started = time.perf_counter()
    root = settings.edge_dir
    staging = ho.staging_root(root)
    if restart:
        shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)
    ho.clear_request(root)
    checkpoint, resumed = open_checkpoint(staging / "checkpoint.sqlite", settings, restart)
    old_shard = current_shard(root)
    report = ReindexReport(
        backend="edge",
        old=None if old_shard is None else old_shard.name,
        new=str(staging),
        resumed=resumed,
    )
    target = EdgeIndex(staging, optimize_min_unindexed=settings.index_optimize_min_unindexed)
    await target.ensure_collection(embedder.dim)
    try:
        replay, rebuild, positions, done = await build(
            settings, conn, embedder, target, checkpoint, progress
        )
        try:
            if swap:
                report.points = await _edge_swap(
                    root,
                    target,
                    embedder.dim,
                    replay,
                    rebuild,
                    checkpoint,
                    positions,
                    progress,
                    done,
                )
                report.swapped = True
            else:
                report.points = await target.count()
        finally:
            await replay.__aexit__(None, None, None)
        report.records = done[0]
        report.dead_lettered = rebuild.dead_lettered
    finally:
        checkpoint.close()
        await target.aclose()
        ho.clear_request(root)
    if report.swapped:
        new_shard = current_shard(root)
        report.new = "" if new_shard is None else new_shard.name
    report.seconds = round(time.perf_counter() - started, 2)
    return report


async def _edge_swap(
    root: Path,
    target: EdgeIndex,
    dim: int,
    replay: TopicReplay,
    rebuild: Rebuild,
    checkpoint: Checkpoint,
    positions: dict[int, int],
    progress: Progress | None,
    done: list[int],
) -> int:
    """Swap the staged shard in: offline when no worker owns the live one, else through it.
    Returns the rebuilt index's points."""
    lock = ho.live_owner_free(root)
    if lock is not None:
        try:
            # No worker runs (and none can start): what it left unprocessed it will process
            # into the new shard; what it processed last is caught up here.
            await final_catch_up(replay, rebuild, checkpoint, positions, progress, done)
            points = await target.count()
            await target.aclose()
            await asyncio.to_thread(ho.adopt_offline, root)
        finally:
            lock.release()
        log.info("reindex_swapped_offline", path=str(current_shard(root)))
        return points
    ho.Handover("prepare", dim).write(root)
    token = await _answer(root, lambda ack: "token" in ack)
    # The worker journals its writes from now on: catch up to the ends measured after that.
    await final_catch_up(replay, rebuild, checkpoint, positions, progress, done)
    points = await target.count()
    await target.aclose()
    ho.Handover("ready", dim, token).write(root)
    deadline = time.monotonic() + HANDOVER_WAIT_S
    while ho.staging_root(root).exists():
        ack = ho.read_ack(root) or {}
        if "refused" in ack:
            raise ConfigError(f"the worker refused the swap: {ack['refused']}")
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the worker did not swap the rebuilt index in {HANDOVER_WAIT_S:.0f}s"
            )
        await asyncio.sleep(0.2)
    return points


async def _answer(root: Path, accepted: Callable[[dict[str, Any]], bool]) -> str:
    """Wait for the worker's answer to ``prepare``; returns its token."""
    deadline = time.monotonic() + HANDOVER_WAIT_S
    while True:
        ack = ho.read_ack(root) or {}
        if "refused" in ack:
            raise ConfigError(f"the worker refused the swap: {ack['refused']}")
        if accepted(ack):
            return str(ack["token"])
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the worker that owns {root} did not answer the handover in "
                f"{HANDOVER_WAIT_S:.0f}s (is it running the index stage?)"
            )
        await asyncio.sleep(0.2)
