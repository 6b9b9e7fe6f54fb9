"""What both vector back ends share: vector names, payload indexes, filters and hit shaping.

The Edge and server adapters translate these neutral shapes into their own client types, so a
filter means the same thing on both and the contract suite can compare them id for id.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, cast

from tickerwire.core.errors import ValidationError
from tickerwire.core.metrics import INDEX_UPSERTS, INDEX_WRITE_SECONDS, INDEX_WRITES
from tickerwire.core.ports import (
    IndexQuery,
    Point,
    ScoredHit,
    SearchFilters,
)
from tickerwire.pipeline.fusion import fuse_hits

DENSE = "dense"
SPARSE = "sparse"

#: Payload fields with an index, and the index type each one gets on both back ends.
PAYLOAD_INDEXES: tuple[tuple[str, Literal["keyword", "float", "integer"]], ...] = (
    ("doc_id", "keyword"),
    ("tickers", "keyword"),
    ("doc_type", "keyword"),
    ("source", "keyword"),
    ("published_ts", "float"),
    ("indexed_ts", "float"),
    ("company", "keyword"),
    ("fiscal_period", "keyword"),
    ("fiscal_year", "integer"),
    ("price", "float"),
    ("change", "float"),
    ("change_pct", "float"),
    ("volume", "float"),
)

#: Payload fields with a float index: stored as floats (the index ignores other types), and the
#: fields :meth:`VectorIndex.top_by` may order by.
FLOAT_FIELDS: tuple[str, ...] = tuple(name for name, kind in PAYLOAD_INDEXES if kind == "float")

#: Page size for scrolls over ids and documents.
SCROLL_PAGE = 1024


@contextlib.contextmanager
def timed_write(
    backend: str, kind: Literal["upsert", "delete", "payload"], *, upserted: int = 0
) -> Iterator[None]:
    """Time and count one index write that succeeds (``tickerwire_index_write_seconds``,
    ``_writes_total``; ``upserted`` points in ``_upserts_total``); a failed one is not counted."""
    start = time.perf_counter()
    yield
    INDEX_WRITE_SECONDS.labels(backend, kind).observe(time.perf_counter() - start)
    INDEX_WRITES.labels(backend, kind).inc()
    if upserted:
        INDEX_UPSERTS.labels(backend).inc(upserted)


@dataclass(frozen=True, slots=True)
class MatchAnyCond:
    """The payload field ``key`` holds at least one of ``values`` (arrays match per element)."""

    key: str
    values: tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RangeCond:
    """The float payload field ``key`` lies within ``bounds``, keyed as both clients' range types
    take them (``gte``, ``lt``, ``lte``); a bound that is absent is open."""

    key: str
    bounds: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class IsEmptyCond:
    """The payload field ``key`` is absent, null or an empty list."""

    key: str


@dataclass(frozen=True, slots=True)
class AnyOfCond:
    """At least one of ``options`` holds, each option a list of conditions that all must."""

    options: tuple[tuple[Condition, ...], ...]


Condition = MatchAnyCond | RangeCond | IsEmptyCond | AnyOfCond


def to_epoch(value: datetime) -> float:
    """Epoch seconds of ``value``; a naive datetime is taken to be UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def filter_conditions(filters: SearchFilters | None) -> list[Condition]:
    """The conditions ``filters`` stands for, all of which must hold.

    Lists match any of their values; ``published_after`` is inclusive, ``published_before``
    exclusive (a half-open window), and ``as_of`` inclusive: nothing published after it is seen.
    """
    if filters is None:
        return []
    conds: list[Condition] = []
    for key, values in (
        ("tickers", filters.tickers),
        ("doc_type", filters.doc_types),
        ("source", filters.sources),
        ("doc_id", filters.doc_ids),
        ("company", filters.companies),
        ("fiscal_period", filters.fiscal_periods),
    ):
        if values:
            conds.append(MatchAnyCond(key, tuple(values)))
    if filters.fiscal_years:
        conds.append(MatchAnyCond("fiscal_year", tuple(filters.fiscal_years)))
    if filters.period is not None:
        scope = filters.period
        conds.append(
            AnyOfCond(
                (
                    (MatchAnyCond("fiscal_year", (scope.year,)),),
                    (
                        IsEmptyCond("fiscal_year"),
                        RangeCond(
                            "published_ts",
                            {
                                "gte": to_epoch(scope.published_from),
                                "lt": to_epoch(scope.published_before),
                            },
                        ),
                    ),
                )
            )
        )
    window = {
        bound: to_epoch(moment)
        for bound, moment in (("gte", filters.published_after), ("lt", filters.published_before))
        if moment is not None
    }
    if window:
        conds.append(RangeCond("published_ts", window))
    if filters.as_of is not None:
        conds.append(RangeCond("published_ts", {"lte": to_epoch(filters.as_of)}))
    return conds


C = TypeVar("C")
F = TypeVar("F")


class FilterBuilder(abc.ABC, Generic[C, F]):
    """Builds one back end's filter from the neutral conditions: the walk over the conditions is
    here, once; a back end says only how each kind of condition is spelled in its client types
    (``C`` a condition, ``F`` a filter, which is also a condition where one nests)."""

    @abc.abstractmethod
    def match_any(self, key: str, values: list[str] | list[int]) -> C: ...

    @abc.abstractmethod
    def in_range(self, key: str, bounds: Mapping[str, float]) -> C:
        """``bounds``: some of ``gte``, ``lt`` and ``lte`` (an absent one is open)."""

    @abc.abstractmethod
    def is_empty(self, key: str) -> C: ...

    @abc.abstractmethod
    def all_of(self, conds: list[C | F]) -> F: ...

    @abc.abstractmethod
    def any_of(self, filters: list[F]) -> F: ...

    def condition(self, cond: Condition) -> C | F:
        """The back end's condition for ``cond``."""
        if isinstance(cond, AnyOfCond):
            return self.any_of([self.all_of([self.condition(c) for c in o]) for o in cond.options])
        if isinstance(cond, IsEmptyCond):
            return self.is_empty(cond.key)
        if isinstance(cond, MatchAnyCond):
            return self.match_any(cond.key, cast("list[str] | list[int]", list(cond.values)))
        return self.in_range(cond.key, cond.bounds)

    def filter(self, filters: SearchFilters | None) -> F | None:
        """The back end's filter for ``filters``; None when nothing is filtered."""
        conds = filter_conditions(filters)
        return self.all_of([self.condition(c) for c in conds]) if conds else None


def check_search_args(query: IndexQuery) -> None:
    """Raise ValidationError when ``query`` lacks the vector(s) its mode needs or its limit is
    below 1 (a sparse vector without terms counts as missing)."""
    if query.limit < 1:
        raise ValidationError(f"limit must be >= 1, got {query.limit}")
    if query.mode in ("dense", "hybrid") and query.dense is None:
        raise ValidationError(f"mode {query.mode!r} needs a dense query vector")
    if query.mode in ("sparse", "hybrid") and (query.sparse is None or not query.sparse.indices):
        raise ValidationError(f"mode {query.mode!r} needs a sparse query vector")


class SearchTemplate:
    """:meth:`VectorIndex.search`, shared by both back ends: the argument checks and the
    client-side fusion here, the back end's own query in :meth:`_query`."""

    async def search(self, query: IndexQuery) -> list[ScoredHit]:
        """Top ``limit`` hits; hybrid fuses filtered dense and sparse prefetches by its
        ``fusion`` (weighted RRF in the index, or client-side score fusion)."""
        check_search_args(query)
        hybrid = query.hybrid
        if query.mode != "hybrid" or hybrid.fusion == "rrf":
            return await self._query(query)
        # Qdrant fuses only by RRF or DBSF in the index, and the shipped default is score fusion
        # (docs/retrieval.md): both back ends run the two filtered searches and fuse them here.
        depth = max(hybrid.prefetch, query.limit)
        dense_hits, sparse_hits = await asyncio.gather(
            self._query(dataclasses.replace(query, sparse=None, mode="dense", limit=depth)),
            self._query(dataclasses.replace(query, dense=None, mode="sparse", limit=depth)),
        )
        return fuse_hits(dense_hits, sparse_hits, hybrid, query.limit)

    async def _query(self, query: IndexQuery) -> list[ScoredHit]:
        """The back end's search for ``query`` (checked; hybrid only with RRF)."""
        raise NotImplementedError

    async def top_by(
        self, *, field: str, direction: Literal["asc", "desc"], filters: SearchFilters, limit: int
    ) -> list[ScoredHit]:
        """At most ``limit`` points matching ``filters``, ordered by ``field`` through its float
        index (Qdrant order-by); points without the field are skipped; score is the field value."""
        check_top_by_args(field, direction, limit)
        return await self._ordered(field, direction, filters, limit)

    async def _ordered(
        self, field: str, direction: Literal["asc", "desc"], filters: SearchFilters, limit: int
    ) -> list[ScoredHit]:
        """The back end's order-by scroll (arguments checked)."""
        raise NotImplementedError


def check_top_by_args(field: str, direction: str, limit: int) -> None:
    """Raise ValidationError unless ``field`` has a float index and the other arguments are sane."""
    if field not in FLOAT_FIELDS:
        raise ValidationError(
            f"cannot order by {field!r}; orderable fields: {', '.join(FLOAT_FIELDS)}"
        )
    if direction not in ("asc", "desc"):
        raise ValidationError(f"direction must be 'asc' or 'desc', got {direction!r}")
    if limit < 1:
        raise ValidationError(f"limit must be >= 1, got {limit}")


def stored_payload(point: Point) -> dict[str, Any]:
    """The payload as stored: a copy with the epoch fields coerced to float.

    Raises ValidationError when ``doc_id`` is missing, since every delete and lookup keys on it.
    """
    if not isinstance(point.payload.get("doc_id"), str):
        raise ValidationError(f"point {point.id} has no string doc_id in its payload")
    return stored_fields(point.payload)


def stored_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Payload fields as stored: a copy with the float-indexed fields coerced to float."""
    payload = dict(fields)
    for key in FLOAT_FIELDS:
        value = payload.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            payload[key] = float(value)
    return payload


def to_hit(point_id: object, score: float, payload: Mapping[str, Any] | None) -> ScoredHit:
    """A ScoredHit with a string id, whatever id type the client returned (str, UUID, int)."""
    return ScoredHit(id=str(point_id), score=float(score), payload=dict(payload or {}))


def by_chunk_index(hits: Iterable[ScoredHit]) -> list[ScoredHit]:
    """``hits`` ordered by ``chunk_index`` (then id, so the order is total)."""

    def key(hit: ScoredHit) -> tuple[int, str]:
        index = hit.payload.get("chunk_index")
        return (index if isinstance(index, int) else 1 << 62, hit.id)

    return sorted(hits, key=key)


def float_or_none(value: object) -> float | None:
    """``value`` as a float when it is a number, else None (for watermark reads)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
