"""The embed stage: batch chunks, embed them off the event loop, pass commits through in order.

A permanent embedder fault is narrowed down to the failing chunk by bisection and only that chunk
is dead-lettered. Anything else (a transient or fatal fault) is raised to the batch path,
:func:`tickerwire.stages.app.run_batch`, which retries or stops the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from tickerwire.core.errors import PermanentError, TickerwireError
from tickerwire.core.metrics import STAGE_RECORDS, STAGE_SECONDS
from tickerwire.core.ports import Embedder, SparseEncoder, SparseVector
from tickerwire.core.records import (
    ChunkRecord,
    CommitRecord,
    SparseValues,
    VectorRecord,
    parse_record,
)
from tickerwire.stages.base import VECTORS_TOPIC, DeadLetters, InMsg, OutMsg, Sender

log = structlog.get_logger("tickerwire.stages.embed")


class EmbedStage:
    """Turns chunk records into vector records; commit records pass through unchanged."""

    stage = "embed"

    def __init__(
        self,
        *,
        sender: Sender,
        embedder: Embedder,
        sparse: SparseEncoder,
        out_topic: str = VECTORS_TOPIC,
    ) -> None:
        self._sender = sender
        self._embedder = embedder
        self._sparse = sparse
        self._out_topic = out_topic
        self._dead = DeadLetters("embed")

    async def handle(self, batch: Sequence[InMsg]) -> None:
        """Embed every chunk of the batch in one call and send the results in input order."""
        with STAGE_SECONDS.labels(stage=self.stage).time():
            parsed: list[tuple[InMsg, ChunkRecord | CommitRecord | PermanentError]] = []
            for msg in batch:
                try:
                    any_rec = parse_record(msg.value)
                except PermanentError as exc:
                    parsed.append((msg, exc))
                    continue
                if isinstance(any_rec, ChunkRecord | CommitRecord):
                    parsed.append((msg, any_rec))
                else:
                    parsed.append((msg, PermanentError(f"unexpected {any_rec.schema_} record")))
            chunks = [rec for _, rec in parsed if isinstance(rec, ChunkRecord)]
            vectors = await self._embed(chunks) if chunks else []
            by_chunk = dict(zip((id(c) for c in chunks), vectors, strict=True))
            out: list[OutMsg] = []
            for msg, rec in parsed:
                if isinstance(rec, PermanentError):
                    out.append(self._dead.message(msg, rec))
                elif isinstance(rec, CommitRecord):
                    out.append(OutMsg(self._out_topic, msg.key or b"", msg.value))
                else:
                    result = by_chunk[id(rec)]
                    if isinstance(result, BaseException):
                        out.append(self._dead.message(msg, result))
                    else:
                        out.append(OutMsg(self._out_topic, msg.key or b"", result))
                        STAGE_RECORDS.labels(stage=self.stage, outcome="ok").inc()
            await self._sender.send_all(out)

    async def _embed(self, chunks: list[ChunkRecord]) -> list[bytes | TickerwireError]:
        """Encoded vector records, or the permanent error of each chunk that cannot be embedded.

        The sparse vectors and the records are built on a worker thread while the embedder
        runs, so the event loop only moves bytes.
        """
        sparse = asyncio.create_task(asyncio.to_thread(self._sparse_all, chunks))
        dense = await self._dense(chunks)
        return await asyncio.to_thread(self._records, chunks, dense, await sparse)

    def _sparse_all(self, chunks: list[ChunkRecord]) -> list[SparseVector]:
        return [self._sparse.encode_document(c.embed_text) for c in chunks]

    def _records(
        self,
        chunks: list[ChunkRecord],
        dense: list[list[float] | TickerwireError],
        sparse: list[SparseVector],
    ) -> list[bytes | TickerwireError]:
        model = self._embedder.name
        out: list[bytes | TickerwireError] = []
        for chunk, vec, sp in zip(chunks, dense, sparse, strict=True):
            if isinstance(vec, TickerwireError):
                out.append(vec)
                continue
            record = VectorRecord.from_chunk(
                chunk,
                dense=vec,
                sparse=SparseValues(indices=sp.indices, values=sp.values),
                model=model,
            )
            out.append(record.to_bytes())
        return out

    async def _dense(self, chunks: list[ChunkRecord]) -> list[list[float] | TickerwireError]:
        """Dense vectors; a permanent failure is narrowed down to single chunks by bisection."""
        try:
            return list(await self._call(chunks))
        except PermanentError as exc:
            if len(chunks) == 1:
                return [exc]
            mid = len(chunks) // 2
            return await self._dense(chunks[:mid]) + await self._dense(chunks[mid:])

    async def _call(self, chunks: list[ChunkRecord]) -> list[list[float]]:
        """One embedding call; the embedder adapters count calls and texts."""
        return await self._embedder.embed_documents([c.embed_text for c in chunks])
