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

import asyncio
import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tickerwire.adapters import edge_handover as ho
from tickerwire.adapters.edge_layout import current_shard
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.index_server import ServerIndex, next_generation_name
from tickerwire.adapters.kafka_options import KafkaConnection, client_options
from tickerwire.adapters.topic_replay import ReplayedRecord, TopicReplay
from tickerwire.core.errors import ConfigError
from tickerwire.core.ports import Embedder, VectorIndex
from tickerwire.core.settings import Settings
from tickerwire.core.topics import CHUNKS_TOPIC, RAW_TOPIC, VECTORS_TOPIC
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.stages.app import run_batch
from tickerwire.stages.base import InMsg, OutMsg
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.index import IndexStage
from tickerwire.stages.preprocess import PreprocessStage

log = structlog.get_logger("tickerwire.runtime.reindex")

#: The Edge worker answers a handover within a poll (1 s); this bounds each wait for it.
HANDOVER_WAIT_S = 120.0
#: Settings that change what is indexed: a checkpoint made under others cannot be resumed.
_FINGERPRINT = (
    "embedder",
    "openai_embedding_model",
    "openai_dimensions",
    "chunk_tokens",
    "chunk_overlap",
    "chunk_header",
    "chunk_sections",
    "max_body_bytes",
    "qdrant_url",
    "collection",
    "app_id",
)


def fingerprint(settings: Settings) -> str:
    """A digest of the settings that decide the rebuilt index's contents."""
    data = settings.model_dump(include=set(_FINGERPRINT), mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Checkpoint(MutableMapping[bytes, Any]):
    """The rebuild's positions and preprocess state, in one SQLite file.

    It is the preprocess stage's state table (a mapping, like the faust Table it replaces);
    changes are kept in memory until :meth:`save` writes them with the positions in one
    transaction.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, value BLOB NOT NULL);"
            "CREATE TABLE IF NOT EXISTS positions (partition INTEGER PRIMARY KEY,"
            " next_offset INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        self._state: dict[bytes, Any] = dict(self._db.execute("SELECT key, value FROM state"))
        self._dirty: set[bytes] = set()

    # --- the state table ------------------------------------------------------------------------

    def __getitem__(self, key: bytes) -> Any:
        return self._state[key]

    def __setitem__(self, key: bytes, value: Any) -> None:
        self._state[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: bytes) -> None:
        del self._state[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    # --- positions and metadata -----------------------------------------------------------------

    def positions(self) -> dict[int, int]:
        """The next offset to read per partition (empty: from the beginning)."""
        return dict(self._db.execute("SELECT partition, next_offset FROM positions"))

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def save(self, positions: Mapping[int, int]) -> None:
        """Store the positions and the state changed since the last save, atomically."""
        with self._db:
            for key in self._dirty:
                if key in self._state:
                    self._db.execute(
                        "INSERT OR REPLACE INTO state VALUES (?, ?)", (key, self._state[key])
                    )
                else:
                    self._db.execute("DELETE FROM state WHERE key = ?", (key,))
            self._db.executemany(
                "INSERT OR REPLACE INTO positions VALUES (?, ?)", sorted(positions.items())
            )
        self._dirty.clear()

    def close(self) -> None:
        self._db.close()


@dataclass
class ReindexReport:
    """What a rebuild did."""

    backend: str
    old: str | None
    new: str
    records: int = 0
    dead_lettered: int = 0
    points: int = 0
    seconds: float = 0.0
    resumed: bool = False
    swapped: bool = False
    dropped_old: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class _Collect:
    """A Sender that keeps what a stage produced, for the next stage of the chain."""

    def __init__(self) -> None:
        self.msgs: list[OutMsg] = []

    async def send_all(self, msgs: Sequence[OutMsg]) -> None:
        self.msgs.extend(msgs)

    def take(self) -> list[OutMsg]:
        out, self.msgs = self.msgs, []
        return out


async def _fatal(stage: str, exc: BaseException) -> None:
    """A fatal error (a rejected API key, bad settings) ends the rebuild, checkpoint intact."""
    raise exc


#: Progress callback: (records done, records to do).
Progress = Callable[[int, int], None]


class Rebuild:
    """The in-memory chain preprocess -> embed -> index into ``target``, fed from the replay."""

    def __init__(
        self, settings: Settings, embedder: Embedder, target: VectorIndex, state: Checkpoint
    ) -> None:
        from tickerwire.runtime import chunker_for

        self._pre_out, self._embed_out, self._index_out = _Collect(), _Collect(), _Collect()
        self.preprocess = PreprocessStage(
            sender=self._pre_out,
            state=state,
            chunker=chunker_for(settings, embedder),
            max_body_bytes=settings.max_body_bytes,
            threads=settings.preprocess_threads,
            entities_topic=None,  # the live pipeline has published them
            tombstone_retention_s=settings.tombstone_retention_s,
        )
        self.embed = EmbedStage(sender=self._embed_out, embedder=embedder, sparse=BM25Encoder())
        self.index = IndexStage(index=target, sender=self._index_out)
        self.dead_lettered = 0
        self.batch = settings.reindex_batch
        self._seq = 0

    def _forward(self, msgs: Sequence[OutMsg], topic: str, partition: int) -> list[InMsg]:
        """The records of ``topic`` among ``msgs`` as the next stage's input; the rest are
        dead letters, counted (the live pipeline already wrote them to the DLQ)."""
        out: list[InMsg] = []
        for m in msgs:
            if m.topic != topic:
                self.dead_lettered += 1
                continue
            self._seq += 1
            out.append(
                InMsg(topic=topic, partition=partition, offset=self._seq, key=m.key, value=m.value)
            )
        return out

    async def run(self, records: Sequence[ReplayedRecord]) -> None:
        """Carry ``records`` through the three stages until they are in the target index."""
        by_partition: dict[int, list[ReplayedRecord]] = {}
        for r in records:
            by_partition.setdefault(r.partition, []).append(r)
        for partition, part in sorted(by_partition.items()):
            raw = [
                InMsg(
                    topic=RAW_TOPIC,
                    partition=r.partition,
                    offset=r.offset,
                    key=r.key,
                    value=r.value,
                    headers=r.headers,
                    timestamp_ms=r.timestamp_ms,
                )
                for r in part
            ]
            await run_batch("preprocess", self.preprocess.handle, self._pre_out, raw, stop=_fatal)
            chunks = self._forward(self._pre_out.take(), CHUNKS_TOPIC, partition)
            if chunks:
                await run_batch("embed", self.embed.handle, self._embed_out, chunks, stop=_fatal)
            vectors = self._forward(self._embed_out.take(), VECTORS_TOPIC, partition)
            if vectors:
                await run_batch("index", self.index.handle, self._index_out, vectors, stop=_fatal)
            self.dead_lettered += len(self._index_out.take())


async def _catch_up(
    replay: TopicReplay,
    rebuild: Rebuild,
    checkpoint: Checkpoint,
    positions: dict[int, int],
    ends: Mapping[int, int],
    progress: Progress | None,
    done: list[int],
    total: int,
) -> None:
    """Read until every partition's position reaches ``ends``; checkpoint after each batch."""
    while any(positions.get(p, 0) < end for p, end in ends.items()):
        records = await replay.read(rebuild.batch)
        if not records:
            # A position can stay below the end over compacted or transaction-marker offsets.
            for p in ends:
                positions[p] = max(positions.get(p, 0), await replay.position(p))
            continue
        await rebuild.run(records)
        for r in records:
            positions[r.partition] = max(positions.get(r.partition, 0), r.offset + 1)
        checkpoint.save(positions)
        await replay.commit(positions)
        done[0] += len(records)
        if progress is not None:
            progress(done[0], total)


def _remaining(positions: Mapping[int, int], ends: Mapping[int, int]) -> int:
    return sum(max(0, end - positions.get(p, 0)) for p, end in ends.items())


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
    try:
        if settings.qdrant_url is None and server_index is None:
            return await _reindex_edge(settings, conn, embedder, progress, restart, swap)
        return await _reindex_server(
            settings, conn, embedder, progress, restart, swap, drop_old, server_index
        )
    finally:
        await embedder.aclose()


def _open_checkpoint(path: Path, settings: Settings, restart: bool) -> tuple[Checkpoint, bool]:
    """The checkpoint at ``path`` (new, or resumed when its settings match)."""
    if restart:
        path.unlink(missing_ok=True)
    checkpoint = Checkpoint(path)
    stored = checkpoint.meta("fingerprint")
    if stored is None:
        checkpoint.set_meta("fingerprint", fingerprint(settings))
        return checkpoint, False
    if stored != fingerprint(settings):
        checkpoint.close()
        raise ConfigError(
            f"an interrupted rebuild at {path} was made with other index settings; "
            "run `tickerwire reindex --restart` to throw it away and start over"
        )
    return checkpoint, True


async def _build(
    settings: Settings,
    conn: KafkaConnection,
    embedder: Embedder,
    target: VectorIndex,
    checkpoint: Checkpoint,
    progress: Progress | None,
) -> tuple[TopicReplay, Rebuild, dict[int, int], list[int]]:
    """Open the replay at the checkpoint and catch up to the end offsets of now."""
    replay = TopicReplay(conn, RAW_TOPIC, f"{settings.app_id}-reindex")
    await replay.__aenter__()
    try:
        positions = await replay.seek(checkpoint.positions())
        rebuild = Rebuild(settings, embedder, target, checkpoint)
        ends = await replay.end_offsets()
        done = [0]
        await _catch_up(
            replay,
            rebuild,
            checkpoint,
            positions,
            ends,
            progress,
            done,
            _remaining(positions, ends),
        )
    except BaseException:
        await replay.__aexit__(None, None, None)
        raise
    return replay, rebuild, positions, done


async def _final_catch_up(
    replay: TopicReplay,
    rebuild: Rebuild,
    checkpoint: Checkpoint,
    positions: dict[int, int],
    progress: Progress | None,
    done: list[int],
) -> None:
    """Catch up to the end offsets measured now (the records produced meanwhile)."""
    ends = await replay.end_offsets()
    await _catch_up(
        replay,
        rebuild,
        checkpoint,
        positions,
        ends,
        progress,
        done,
        done[0] + _remaining(positions, ends),
    )


async def _reindex_server(
    settings: Settings,
    conn: KafkaConnection,
    embedder: Embedder,
    progress: Progress | None,
    restart: bool,
    swap: bool,
    drop_old: bool,
    live: ServerIndex | None,
) -> ReindexReport:
    from tickerwire.adapters.index_factory import open_index

    started = time.perf_counter()
    owned = live is None
    if live is None:
        opened = open_index(settings, embedder.dim)
        assert isinstance(opened, ServerIndex)
        live = opened
    try:
        await live.ensure_collection(embedder.dim)
        old = await live.live_collection()
        if swap and old == settings.collection:
            await live.swap_alias(old)  # raises the ConfigError that explains it, up front
        path = settings.data_dir / "reindex" / f"server-{settings.collection}.sqlite"
        checkpoint, resumed = _open_checkpoint(path, settings, restart)
        if checkpoint.meta("target") == old:  # that rebuild swapped, then stopped: start anew
            checkpoint.close()
            checkpoint, resumed = _open_checkpoint(path, settings, True)
        try:
            new = checkpoint.meta("target")
            if new is None:
                new = next_generation_name(settings.collection, await live.collections())
                checkpoint.set_meta("target", new)
            target = live.sibling(new)
            await target.ensure_collection(embedder.dim)
            report = ReindexReport(backend="server", old=old, new=new, resumed=resumed)
            replay, rebuild, positions, done = await _build(
                settings, conn, embedder, target, checkpoint, progress
            )
            try:
                if swap:
                    await _final_catch_up(replay, rebuild, checkpoint, positions, progress, done)
                    await live.swap_alias(new)
                    report.swapped = True
                    # What was produced while it swapped went to the old collection.
                    await _final_catch_up(replay, rebuild, checkpoint, positions, progress, done)
                    if drop_old and old is not None:
                        await live.drop_collection(old)
                        report.dropped_old = True
            finally:
                await replay.__aexit__(None, None, None)
            report.records = done[0]
            report.dead_lettered = rebuild.dead_lettered
            report.points = await target.count()
        finally:
            checkpoint.close()
        if report.swapped:
            path.unlink(missing_ok=True)
    finally:
        if owned:
            await live.aclose()
    report.seconds = round(time.perf_counter() - started, 2)
    return report


async def _reindex_edge(
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
    checkpoint, resumed = _open_checkpoint(staging / "checkpoint.sqlite", settings, restart)
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
        replay, rebuild, positions, done = await _build(
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
            await _final_catch_up(replay, rebuild, checkpoint, positions, progress, done)
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
    await _final_catch_up(replay, rebuild, checkpoint, positions, progress, done)
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
