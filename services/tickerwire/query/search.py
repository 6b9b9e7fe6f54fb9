"""The search use case: embed the query, ask the index, and report what the index could see.

With query understanding on (the default), the companies, tickers and periods the question names
(:mod:`tickerwire.query.understanding`) narrow or re-rank the candidates: an unambiguous aspect
filters, anything else only boosts, so a wrong guess cannot hide the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tickerwire.core.metrics import QUERY_SECONDS, QUERY_UNDERSTOOD
from tickerwire.core.ports import (
    Embedder,
    HybridParams,
    IndexQuery,
    ScoredHit,
    SearchFilters,
    SearchMode,
    SparseEncoder,
    VectorIndex,
    Watermark,
)
from tickerwire.query.payload_match import period_declared, period_matches, tickers_match
from tickerwire.query.understanding import EntityRegistry, Understanding, understand

#: The boost re-rank: a candidate at rank r (from 1) scores (1 + BOOST * m) / (BOOST_RANK_K + r),
#: m being the share of boosted aspects it matches. A full match at rank r thus passes a
#: non-matching candidate at rank r' only when r < 1.5 r' + 10: rank 11 may take the top, rank 30
#: passes rank 14 and below, rank 90 only rank 54 and below. A moderate lift that keeps the
#: index's order between equals, so a wrong guess moves the answer down a little, never out.
BOOST_RANK_K = 20
BOOST = 0.5


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Hits, the watermark of the index at query time, and per-phase timings in ms."""

    hits: list[ScoredHit]
    watermark: Watermark
    timings: dict[str, float]
    #: What the question named and how it applied (None when off or nothing was recognised).
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchService:
    """Hybrid (default), dense or sparse search over the live index.

    ``registry`` holds the names and tickers learned from the documents, which questions are
    understood with (empty by default); status pages read ``index``.
    """

    embedder: Embedder
    sparse: SparseEncoder
    index: VectorIndex
    hybrid: HybridParams = dataclasses.field(default_factory=HybridParams)
    registry: EntityRegistry = dataclasses.field(default_factory=EntityRegistry)

    def understand(self, query: str, filters: SearchFilters | None = None) -> Understanding:
        """What ``query`` names and how it would apply under ``filters``.

        Tickers the caller already filters on win: the understood ones then only boost.
        """
        filters = filters or SearchFilters()
        u = understand(query, self.registry, as_of=filters.as_of)
        if filters.tickers and u.filters:
            u = dataclasses.replace(
                u,
                ticker_filter=(),
                period_filter=None,
                boost_tickers=frozenset(u.entities.tickers),
                boost_periods=u.periods,
            )
        return u

    def narrow(
        self, query: str, k: int, filters: SearchFilters | None, *, understand: bool = True
    ) -> tuple[Understanding | None, SearchFilters, int]:
        """What ``query`` names (None when off or nothing known), the filters the index search
        runs with, and how many candidates it returns before the re-rank."""
        filters = filters or SearchFilters()
        u = self.understand(query, filters) if understand else None
        if u is None or u.empty:
            return None, filters, k
        if u.ticker_filter:
            filters = dataclasses.replace(filters, tickers=u.ticker_filter)
        if u.period_filter is not None:  # in the index, so every candidate is in scope
            filters = dataclasses.replace(filters, period=u.period_filter.scope())
        return u, filters, max(k, self.hybrid.prefetch)

    async def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: SearchMode = "hybrid",
        filters: SearchFilters | None = None,
        understand: bool = True,
    ) -> SearchResult:
        """The top ``k`` chunks for ``query``, with the index watermark and timings.

        With ``understand`` off, or when the question names nothing known, the search is exactly
        the plain one. Otherwise the index returns a larger candidate set (as deep as hybrid's
        prefetch, so fusion ranks it the same), which an unambiguous period filters and other
        aspects re-rank; scores stay the index's own.
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        u, filters, limit = self.narrow(query, k, filters, understand=understand)
        if u is not None:
            QUERY_UNDERSTOOD.labels(applied_as=u.applied_as or "none").inc()
        tu = time.perf_counter()
        dense = await self.embedder.embed_query(query) if mode != "sparse" else None
        sparse = self.sparse.encode_query(query) if mode != "dense" else None
        if sparse is not None and not sparse.indices:
            # No keyword of the query can match (stopwords, symbols): hybrid ranks by the dense
            # side alone, and a keyword search finds nothing. Neither is the caller's error.
            sparse = None
            mode = "dense" if mode == "hybrid" else mode
        t1 = time.perf_counter()
        hits, watermark = await asyncio.gather(
            self._candidates(IndexQuery(mode, dense, sparse, filters, limit, self.hybrid)),
            self.index.watermark(),
        )
        if u is not None:
            hits = apply_understanding(hits, u)[:k]
        t2 = time.perf_counter()
        timings["understand_ms"] = round((tu - t0) * 1000, 3)
        timings["embed_ms"] = round((t1 - tu) * 1000, 3)
        timings["search_ms"] = round((t2 - t1) * 1000, 3)
        timings["total_ms"] = round((t2 - t0) * 1000, 3)
        QUERY_SECONDS.labels(endpoint="search", phase="embed").observe(t1 - tu)
        QUERY_SECONDS.labels(endpoint="search", phase="search").observe(t2 - t1)
        return SearchResult(
            hits=hits,
            watermark=watermark,
            timings=timings,
            understood=u.to_json() if u is not None else None,
        )

    async def _candidates(self, query: IndexQuery) -> list[ScoredHit]:
        if query.mode == "sparse" and query.sparse is None:
            return []
        return await self.index.search(query)


def apply_understanding(hits: Sequence[ScoredHit], u: Understanding) -> list[ScoredHit]:
    """``hits`` (best first) without those outside an unambiguous period, re-ranked by boosts.

    The re-rank is by rank, not score, so it means the same in every mode: a candidate at rank r
    (from 1) gets ``(1 + BOOST * m) / (BOOST_RANK_K + r)``, where m is the share of boosted
    aspects (tickers, periods) it matches. Under a period filter, a point that declares the
    period (its fiscal period) counts as a boosted match, and one that is only published
    while the period ran does not. Ties keep the index's order.
    """
    period = u.period_filter
    kept = [h for h in hits if period is None or period_matches(period, h.payload)]
    if not u.boosts and period is None:
        return kept

    def matched(hit: ScoredHit) -> float:
        checks: list[bool] = []
        if u.boost_tickers:
            checks.append(tickers_match(u.boost_tickers, hit.payload))
        if u.boost_periods:
            checks.append(any(period_matches(p, hit.payload) for p in u.boost_periods))
        if period is not None:  # a report of the period over news published while it ran
            checks.append(period_declared(period, hit.payload))
        return sum(checks) / len(checks)

    ranked = sorted(
        enumerate(kept),
        key=lambda item: -(1 + BOOST * matched(item[1])) / (BOOST_RANK_K + item[0] + 1),
    )
    return [hit for _, hit in ranked]
