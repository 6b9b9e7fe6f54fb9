"""Wrappers that record when things happen: commits applied, embedder busy time, stage batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tickerwire.core.ports import (
    Embedder,
    IndexQuery,
    Point,
    ScoredHit,
    SearchFilters,
    Splitter,
    VectorIndex,
    Watermark,
)
from tickerwire.stages.app import Handler
from tickerwire.stages.base import InMsg


class TimedIndex:
    """A VectorIndex that records when each document's commit was applied (wall clock)."""

    def __init__(self, inner: VectorIndex) -> None:
        self.inner = inner
        self.commit_applied: dict[str, float] = {}
        self.upserted = 0
        self.upsert_calls = 0
        self.upsert_seconds = 0.0
        self.delete_calls = 0
        self.delete_seconds = 0.0
        self._waiters: list[tuple[set[str], asyncio.Future[None]]] = []

    # recording -------------------------------------------------------------------------------

    async def wait_for(self, doc_ids: set[str], limit_s: float) -> bool:
        """Wait until every doc in ``doc_ids`` has had a commit applied; False on timeout."""
        missing = doc_ids - self.commit_applied.keys()
        if not missing:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((missing, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), limit_s)
        except TimeoutError:
            return False
        finally:
            self._waiters = [(s, f) for s, f in self._waiters if f is not fut]
        return True

    def _applied(self, doc_id: str) -> None:
        self.commit_applied.setdefault(doc_id, time.time())
        for missing, fut in self._waiters:
            missing.discard(doc_id)
            if not missing and not fut.done():
                fut.set_result(None)

    # VectorIndex -------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self.inner.backend

    async def ensure_collection(self, dim: int) -> None:
        await self.inner.ensure_collection(dim)

    async def upsert(self, points: Sequence[Point]) -> None:
        started = time.perf_counter()
        await self.inner.upsert(points)
        self.upsert_seconds += time.perf_counter() - started
        self.upsert_calls += 1
        self.upserted += len(points)

    async def refresh_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        await self.inner.refresh_payloads(updates)

    async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        started = time.perf_counter()
        removed = await self.inner.apply_commits(commits)
        self.delete_seconds += time.perf_counter() - started
        self.delete_calls += 1
        for doc_id, _ in commits:
            self._applied(doc_id)
        return removed

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        return await self.inner.get_document(doc_id)

    async def search(self, query: IndexQuery) -> list[ScoredHit]:
        return await self.inner.search(query)

    async def count(self, filters: SearchFilters | None = None) -> int:
        return await self.inner.count(filters)

    async def top_by(self, **query: Any) -> list[ScoredHit]:
        return await self.inner.top_by(**query)

    async def watermark(self) -> Watermark:
        return await self.inner.watermark()

    async def needs_optimize(self) -> bool:
        return await self.inner.needs_optimize()

    async def optimize(self) -> None:
        await self.inner.optimize()

    async def adopt_handover(self) -> bool:
        return await self.inner.adopt_handover()

    async def aclose(self) -> None:
        await self.inner.aclose()


class TimedEmbedder:
    """An Embedder that records each embed_documents call: (start, end, texts)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[tuple[float, float, int]] = []

    def reset(self) -> None:
        self.calls.clear()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        return self.inner.splitter(capacity, overlap)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        started = time.perf_counter()
        out = await self.inner.embed_documents(texts)
        self.calls.append((started, time.perf_counter(), len(texts)))
        return out

    async def embed_query(self, text: str) -> list[float]:
        return await self.inner.embed_query(text)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def busy(self, since: float = 0.0, until: float = float("inf")) -> tuple[float, int, int]:
        """(seconds inside embed_documents, calls, texts) for calls that started in the window."""
        sel = [c for c in self.calls if since <= c[0] <= until]
        return sum(e - s for s, e, _ in sel), len(sel), sum(n for _, _, n in sel)


@dataclass
class StageStats:
    calls: int = 0
    records: int = 0
    seconds: float = 0.0
    first_start: float | None = None
    last_end: float | None = None
    max_batch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "records": self.records,
            "busy_s": round(self.seconds, 4),
            "mean_batch": round(self.records / self.calls, 2) if self.calls else 0.0,
            "max_batch": self.max_batch,
        }


@dataclass
class StageTimer:
    """Wraps the stage handlers faust calls, to time each batch (perf_counter clock)."""

    stats: dict[str, StageStats] = field(default_factory=dict)
    #: When set, doc_id → {stage: wall-clock end of the last batch that held one of its records}.
    track_docs: bool = False
    done_at: dict[str, dict[str, float]] = field(default_factory=dict)

    def reset(self) -> None:
        self.stats.clear()
        self.done_at.clear()

    def wrap(self, name: str, handler: Handler) -> Handler:
        async def timed(batch: Sequence[InMsg]) -> None:
            st = self.stats.setdefault(name, StageStats())
            started = time.perf_counter()
            if st.first_start is None:
                st.first_start = started
            try:
                await handler(batch)
            finally:
                ended = time.perf_counter()
                st.calls += 1
                st.records += len(batch)
                st.seconds += ended - started
                st.max_batch = max(st.max_batch, len(batch))
                st.last_end = ended
                if self.track_docs:
                    now = time.time()
                    for msg in batch:
                        if msg.doc_id is not None:
                            self.done_at.setdefault(msg.doc_id, {})[name] = now

        return timed

    def as_dict(self) -> dict[str, Any]:
        return {name: st.as_dict() for name, st in sorted(self.stats.items())}
