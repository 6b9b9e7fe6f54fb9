"""The search use case: embed the query, ask the index, and report what the index could see."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

from tickerwire.core.metrics import QUERY_SECONDS
from tickerwire.core.ports import (
    Embedder,
    HybridParams,
    ScoredHit,
    SearchFilters,
    SearchMode,
    SparseVector,
    VectorIndex,
    Watermark,
)


class QuerySparseEncoder(Protocol):
    """Sparse query vectors built the same way as the documents' (one weight per term)."""

    def encode_query(self, text: str) -> SparseVector: ...


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Hits, the watermark of the index at query time, and per-phase timings in ms."""

    hits: list[ScoredHit]
    watermark: Watermark
    timings: dict[str, float]
    understood: dict[str, Any] | None = None


HIT_FIELDS = (
    "doc_id",
    "chunk_id",
    "chunk_index",
    "text",
    "title",
    "url",
    "source",
    "doc_type",
    "tickers",
    "published_at",
)


def hit_to_json(hit: ScoredHit) -> dict[str, Any]:
    """A hit as the HTTP API and the CLI show it."""
    out: dict[str, Any] = {name: hit.payload.get(name) for name in HIT_FIELDS}
    out["chunk_id"] = out["chunk_id"] or hit.id
    out["score"] = hit.score
    return out


class SearchService:
    """Hybrid (default), dense or sparse search over the live index."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        sparse: QuerySparseEncoder,
        index: VectorIndex,
        hybrid: HybridParams | None = None,
    ) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._index = index
        self._hybrid = hybrid or HybridParams()

    @property
    def index(self) -> VectorIndex:
        """The index searched (for status pages)."""
        return self._index

    async def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: SearchMode = "hybrid",
        filters: SearchFilters | None = None,
        understand: bool = True,
    ) -> SearchResult:
        """The top ``k`` chunks for ``query``, with the index watermark and timings."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        dense = await self._embedder.embed_query(query) if mode != "sparse" else None
        sparse = self._sparse.encode_query(query) if mode != "dense" else None
        t1 = time.perf_counter()
        hits, watermark = await asyncio.gather(
            self._index.search(
                dense=dense,
                sparse=sparse,
                mode=mode,
                filters=filters or SearchFilters(),
                limit=k,
                hybrid=self._hybrid,
            ),
            self._index.watermark(),
        )
        t2 = time.perf_counter()
        timings["embed_ms"] = round((t1 - t0) * 1000, 3)
        timings["search_ms"] = round((t2 - t1) * 1000, 3)
        timings["total_ms"] = round((t2 - t0) * 1000, 3)
        QUERY_SECONDS.labels(endpoint="search", phase="embed").observe(t1 - t0)
        QUERY_SECONDS.labels(endpoint="search", phase="search").observe(t2 - t1)
        return SearchResult(hits=hits, watermark=watermark, timings=timings)
