"""The rebuild: the three stage handlers chained in memory, fed from the raw topic's replay."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass

from tickerwire.adapters.kafka_options import KafkaConnection
from tickerwire.adapters.topic_replay import ReplayedRecord, TopicReplay
from tickerwire.core.ports import Embedder, VectorIndex
from tickerwire.core.settings import Settings
from tickerwire.core.topics import CHUNKS_TOPIC, RAW_TOPIC, VECTORS_TOPIC
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.runtime.reindex.checkpoint import Checkpoint
from tickerwire.stages.app import run_batch
from tickerwire.stages.base import CollectingSender, InMsg, OutMsg
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.index import IndexStage
from tickerwire.stages.preprocess import PreprocessStage


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

        self._pre_out, self._embed_out, self._index_out = [CollectingSender() for _ in range(3)]
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
            # ReplayedRecord holds InMsg's fields after the topic, in InMsg's order.
            raw = [InMsg(RAW_TOPIC, *astuple(r)) for r in part]
            await run_batch("preprocess", self.preprocess.handle, self._pre_out, raw, stop=_fatal)
            chunks = self._forward(self._pre_out.take(), CHUNKS_TOPIC, partition)
            if chunks:
                await run_batch("embed", self.embed.handle, self._embed_out, chunks, stop=_fatal)
            vectors = self._forward(self._embed_out.take(), VECTORS_TOPIC, partition)
            if vectors:
                await run_batch("index", self.index.handle, self._index_out, vectors, stop=_fatal)
            self.dead_lettered += len(self._index_out.take())


@dataclass
class Job:
    """What one ``tickerwire reindex`` run was asked to do."""

    settings: Settings
    conn: KafkaConnection
    embedder: Embedder
    progress: Progress | None = None
    restart: bool = False
    swap: bool = True
    drop_old: bool = False


class RebuildRun:
    """One rebuild in progress: the replay of the raw topic under the rebuild's own group, the
    stage chain into ``target``, the checkpoint and the counts; an async context manager."""

    def __init__(self, job: Job, target: VectorIndex, checkpoint: Checkpoint) -> None:
        self._job = job
        self._checkpoint = checkpoint
        self._replay = TopicReplay(job.conn, RAW_TOPIC, f"{job.settings.app_id}-reindex")
        self._rebuild = Rebuild(job.settings, job.embedder, target, checkpoint)
        self._positions: dict[int, int] = {}
        #: raw records carried through since this run started
        self.records = 0

    @property
    def dead_lettered(self) -> int:
        """Records the stages refused (the live pipeline dead-lettered them already)."""
        return self._rebuild.dead_lettered

    async def __aenter__(self) -> RebuildRun:
        await self._replay.__aenter__()
        try:
            self._positions = await self._replay.seek(self._checkpoint.positions())
        except BaseException:
            await self._replay.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._replay.__aexit__(*exc)

    async def catch_up(self) -> None:
        """Read until every partition reaches the end offset it has now; checkpoint (SQLite,
        then the group's offsets) after each batch."""
        ends = await self._replay.end_offsets()
        positions = self._positions
        total = self.records + sum(max(0, e - positions.get(p, 0)) for p, e in ends.items())
        while any(positions.get(p, 0) < end for p, end in ends.items()):
            records = await self._replay.read(self._rebuild.batch)
            if not records:
                # A position can stay below the end over compacted or transaction-marker offsets.
                for p in ends:
                    positions[p] = max(positions.get(p, 0), await self._replay.position(p))
                continue
            await self._rebuild.run(records)
            for r in records:
                positions[r.partition] = max(positions.get(r.partition, 0), r.offset + 1)
            self._checkpoint.save(positions)
            await self._replay.commit(positions)
            self.records += len(records)
            if self._job.progress is not None:
                self._job.progress(self.records, total)
