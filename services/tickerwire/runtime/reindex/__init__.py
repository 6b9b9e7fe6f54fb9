"""``tickerwire reindex``: rebuild the index from the compacted raw topic and swap it in live.

The rebuild reads ``tickerwire.docs.raw`` from the beginning under a consumer group of its own
(``<app_id>-reindex``) and runs the three stage handlers in this process, chained in memory
(preprocess, embed, index, with today's settings), into a new collection while the live one
keeps serving. It does not write to the stage topics or the DLQ: the live pipeline owns those.

After every batch its positions and the preprocess state go into one SQLite transaction (the
checkpoint), then to the group's committed offsets, so a rebuild that is killed resumes where
it stopped. Once it has caught up, the swap is atomic:

- **server**: one ``update_collection_aliases`` request re-points the alias at the new physical
  collection (``<collection>__g<N>``); the old one is kept for ``tickerwire eval`` to compare
  until ``--drop-old``. Then the rebuild reads the records produced while it swapped.
- **Edge**: the worker that owns the live shard swaps it, with the write journal of the
  optimization (:mod:`tickerwire.adapters.edge_handover`); with no worker running, reindex
  swaps it offline itself.

See docs/retrieval.md, "Re-index".
"""

from __future__ import annotations

import time

from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.index_factory import open_index
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.adapters.kafka_options import KafkaConnection, client_options
from tickerwire.adapters.server_convert import next_generation_name
from tickerwire.core.settings import Settings
from tickerwire.runtime.reindex.chain import Job, Progress, RebuildRun, ReindexReport
from tickerwire.runtime.reindex.checkpoint import Checkpoint, fingerprint, open_checkpoint
from tickerwire.runtime.reindex.edge import reindex_edge


async def reindex(
    settings: Settings,
    *,
    bootstrap: KafkaConnection | None = None,
    progress: Progress | None = None,
    restart: bool = False,
    swap: bool = True,
    drop_old: bool = False,
    server_index: ServerIndex | None = None,
) -> ReindexReport:
    """Rebuild the index from the raw topic with ``settings`` and (``swap``) swap it in.

    ``restart`` throws an interrupted rebuild away instead of resuming it. ``swap=False``
    stops once the new index has caught up (compare it with ``tickerwire eval --against``, then
    run again to swap). ``server_index`` is the live aliased index to work on (tests pass one
    over qdrant-client's local mode); by default it is opened from the settings.
    """
    conn = bootstrap if bootstrap is not None else client_options(settings)
    embedder = open_embedder(settings)
    job = Job(settings, conn, embedder, progress, restart, swap, drop_old)
    try:
        if settings.qdrant_url is None and server_index is None:
            return await reindex_edge(job)
        if server_index is not None:
            return await _reindex_server(job, server_index)
        opened = open_index(settings, embedder.dim)
        assert isinstance(opened, ServerIndex)
        try:
            return await _reindex_server(job, opened)
        finally:
            await opened.aclose()
    finally:
        await embedder.aclose()


async def _reindex_server(job: Job, live: ServerIndex) -> ReindexReport:
    """Build ``<collection>__g<N+1>`` and re-point the alias at it."""
    started = time.perf_counter()
    settings, dim = job.settings, job.embedder.dim
    await live.ensure_collection(dim)
    old = await live.live_collection()
    if job.swap and old == settings.collection:
        await live.swap_alias(old)  # raises the ConfigError that explains it, up front
    path = settings.data_dir / "reindex" / f"server-{settings.collection}.sqlite"
    checkpoint, resumed = open_checkpoint(path, settings, job.restart)
    if checkpoint.meta("target") == old:  # that rebuild swapped, then stopped: start anew
        checkpoint.close()
        checkpoint, resumed = open_checkpoint(path, settings, True)
    try:
        new = checkpoint.meta("target")
        if new is None:
            new = next_generation_name(settings.collection, await live.collections())
            checkpoint.set_meta("target", new)
        target = live.sibling(new)
        await target.ensure_collection(dim)
        report = ReindexReport(backend="server", old=old, new=new, resumed=resumed)
        async with RebuildRun(job, target, checkpoint) as run:
            await run.catch_up()
            if job.swap:
                await run.catch_up()
                await live.swap_alias(new)
                report.swapped = True
                await run.catch_up()  # what was produced while it swapped went to the old one
                if job.drop_old and old is not None:
                    await live.drop_collection(old)
                    report.dropped_old = True
            report.records, report.dead_lettered = run.records, run.dead_lettered
        report.points = await target.count()
    finally:
        checkpoint.close()
    if report.swapped:
        path.unlink(missing_ok=True)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


__all__ = ["Checkpoint", "ReindexReport", "fingerprint", "reindex"]
