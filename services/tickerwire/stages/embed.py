"""The embed stage: batch chunks, embed them off the event loop, pass commits through in order.

A transient embedder fault is retried with backoff (the batch is held, so consumption pauses);
a permanent one is narrowed down to the failing chunk by bisection and only that chunk is
dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import structlog

from tickerwire.core.errors import PermanentError, TickerwireError
from tickerwire.core.metrics import STAGE_RECORDS, STAGE_SECONDS
from tickerwire.core.ports import Embedder, SparseVector
from tickerwire.core.records import (
    ChunkRecord,
    CommitRecord,
    SparseValues,
    VectorRecord,
    parse_record,
)
from tickerwire.stages.base import VECTORS_TOPIC, DeadLetters, InMsg, OutMsg, RetryPolicy, Sender

log = structlog.get_logger("tickerwire.stages.embed")


class SparseEncoder(Protocol):
    """Client-side sparse (BM25-style) document vectors."""

    def encode_document(self, text: str) -> SparseVector: ...


class EmbedStage:
    """Turns chunk records into vector records; commit records pass through unchanged."""

    stage = "embed"

    def __init__(
        self,
        *,
        sender: Sender,
        embedder: Embedder,
        sparse: SparseEncoder,
        retry: RetryPolicy | None = None,
        out_topic: str = VECTORS_TOPIC,
    ) -> None:
        self._sender = sender
        self._embedder = embedder
        self._sparse = sparse
        self._retry = retry or RetryPolicy()
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
                        out.append(OutMsg(self._out_topic, msg.key or b"", result.to_bytes()))
                        STAGE_RECORDS.labels(stage=self.stage, outcome="ok").inc()
            await self._sender.send_all(out)

    async def _embed(self, chunks: list[ChunkRecord]) -> list[VectorRecord | TickerwireError]:
        """Vectors for every chunk, or the permanent error of each chunk that cannot be embedded."""
        try:
            dense = await self._call(chunks)
        except PermanentError as exc:
            if len(chunks) == 1:
                return [exc]
            mid = len(chunks) // 2
            return await self._embed(chunks[:mid]) + await self._embed(chunks[mid:])
        model = self._embedder.name
        out: list[VectorRecord | TickerwireError] = []
        for chunk, vec in zip(chunks, dense, strict=True):
            sp = self._sparse.encode_document(chunk.embed_text)
            out.append(
                VectorRecord.from_chunk(
                    chunk,
                    dense=vec,
                    sparse=SparseValues(indices=sp.indices, values=sp.values),
                    model=model,
                )
            )
        return out

    async def _call(self, chunks: list[ChunkRecord]) -> list[list[float]]:
        """One embedding call with retries; the embedder adapters count calls and texts."""
        texts = [c.embed_text for c in chunks]
        return await self._retry.run(self.stage, lambda: self._embedder.embed_documents(texts))
