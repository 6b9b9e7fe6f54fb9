"""Contract for ``VectorIndex.top_by`` and the fact payload fields, on both back ends.

Ordering goes through each back end's order-by on a float payload index, so a point without the
field never shows up, whatever the direction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tickerwire.core.errors import ValidationError
from tickerwire.core.payload import IndexPayload
from tickerwire.core.ports import (
    IndexQuery,
    PeriodScope,
    Point,
    SearchFilters,
    SparseVector,
    VectorIndex,
)
from tickerwire.core.records import DocFacts

from ._corpus import basis, point_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY1 = datetime(2026, 11, 26, tzinfo=UTC)
DAY2 = datetime(2026, 11, 27, tzinfo=UTC)

# (doc_id, ticker, day, price, change, change_pct, volume); None: the field is absent.
MARKET: tuple[tuple[str, str, datetime, float, float, float | None, float], ...] = (
    ("mkt:AAPL:1", "AAPL", DAY1, 241.32, 1.87, 0.78, 38_412_900.0),
    ("mkt:MSFT:1", "MSFT", DAY1, 536.10, 3.42, 0.64, 14_870_200.0),
    ("mkt:NVDA:1", "NVDA", DAY1, 194.87, -0.94, -0.48, 162_304_500.0),
    ("mkt:TSLA:1", "TSLA", DAY1, 401.00, -9.10, -2.22, 90_000_000.0),
    ("mkt:AAPL:2", "AAPL", DAY2, 245.00, 3.68, 1.52, 41_000_000.0),
    ("mkt:NVDA:2", "NVDA", DAY2, 190.00, -4.87, -2.50, 170_000_000.0),
    ("mkt:KO:2", "KO", DAY2, 70.00, 0.10, None, 9_000_000.0),
)


def _payload(
    doc_id: str, ticker: str, day: datetime, doc_type: str, facts: DocFacts | None = None
) -> dict[str, Any]:
    return IndexPayload(
        doc_id=doc_id,
        chunk_id=point_id(doc_id, 0),
        chunk_index=0,
        version=1,
        text=f"{doc_id} text",
        title=f"{doc_id} title",
        url=None,
        source="market-data",
        doc_type=doc_type,
        tickers=[ticker],
        published_at=day,
        indexed_ts=day.timestamp() + 5,
        facts=facts,
    ).to_dict()


def _points() -> list[Point]:
    points = []
    for i, (doc_id, ticker, day, price, change, pct, volume) in enumerate(MARKET):
        numbers = {"price": price, "change": change, "volume": volume}
        if pct is not None:
            numbers["change_pct"] = pct
        payload = _payload(doc_id, ticker, day, "market_stats", DocFacts(**numbers))
        points.append(Point(point_id(doc_id, 0), basis(i), SparseVector((1,), (1.0,)), payload))
    facts = DocFacts(company="NVIDIA", fiscal_period="2027Q3", fiscal_year=2027)
    news = _payload("news:1", "NVDA", DAY2, "filing", facts)
    points.append(Point(point_id("news:1", 0), basis(7), SparseVector((2,), (1.0,)), news))
    return points


POINTS = _points()


def _doc(hit_payload: dict[str, Any]) -> str:
    return str(hit_payload["doc_id"])


async def _top(
    index: VectorIndex, field: str, direction: str, limit: int = 10, **filters: Any
) -> list[tuple[str, float]]:
    hits = await index.top_by(
        field=field,
        direction="asc" if direction == "asc" else "desc",
        filters=SearchFilters(**filters),
        limit=limit,
    )
    return [(_doc(h.payload), h.score) for h in hits]


async def test_top_by_desc_orders_by_the_field_and_scores_with_its_value(
    index: VectorIndex,
) -> None:
    await index.upsert(POINTS)
    top = await _top(index, "change_pct", "desc")
    assert top == [
        ("mkt:AAPL:2", 1.52),
        ("mkt:AAPL:1", 0.78),
        ("mkt:MSFT:1", 0.64),
        ("mkt:NVDA:1", -0.48),
        ("mkt:TSLA:1", -2.22),
        ("mkt:NVDA:2", -2.5),
    ]


async def test_top_by_asc_gives_the_biggest_fallers_first(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    top = await _top(index, "change_pct", "asc", limit=2)
    assert top == [("mkt:NVDA:2", -2.5), ("mkt:TSLA:1", -2.22)]


async def test_top_by_skips_points_without_the_field(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    for direction in ("asc", "desc"):
        docs = {doc for doc, _ in await _top(index, "change_pct", direction, limit=100)}
        assert "mkt:KO:2" not in docs
        assert "news:1" not in docs
    volumes = {doc for doc, _ in await _top(index, "volume", "desc", limit=100)}
    assert volumes == {m[0] for m in MARKET}


async def test_top_by_applies_ticker_type_and_date_filters(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    nvda = await _top(index, "price", "desc", tickers=("NVDA",))
    assert nvda == [("mkt:NVDA:1", 194.87), ("mkt:NVDA:2", 190.0)]
    day2 = await _top(
        index,
        "volume",
        "desc",
        doc_types=("market_stats",),
        published_after=DAY2,
        published_before=datetime(2026, 11, 28, tzinfo=UTC),
    )
    assert [doc for doc, _ in day2] == ["mkt:NVDA:2", "mkt:AAPL:2", "mkt:KO:2"]
    as_of = await _top(index, "change", "desc", as_of=DAY1)
    assert [doc for doc, _ in as_of] == ["mkt:MSFT:1", "mkt:AAPL:1", "mkt:NVDA:1", "mkt:TSLA:1"]


async def test_top_by_returns_at_most_limit_points(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    assert len(await _top(index, "price", "desc", limit=3)) == 3
    assert await _top(index, "price", "desc", limit=1) == [("mkt:MSFT:1", 536.1)]


async def test_top_by_on_an_empty_index_is_empty(index: VectorIndex) -> None:
    assert await _top(index, "price", "desc") == []


async def test_top_by_stores_integral_numbers_as_floats(index: VectorIndex) -> None:
    payload = _payload("mkt:INT:1", "INTC", DAY1, "market_stats")
    payload.update(price=20, volume=1000)
    await index.upsert(
        [Point(point_id("mkt:INT:1", 0), basis(0), SparseVector((1,), (1.0,)), payload)]
    )
    assert await _top(index, "volume", "desc") == [("mkt:INT:1", 1000.0)]
    assert await _top(index, "price", "asc") == [("mkt:INT:1", 20.0)]


@pytest.mark.parametrize(
    ("field", "direction", "limit", "reason"),
    [
        ("text", "desc", 5, "cannot order by 'text'"),
        ("fiscal_year", "desc", 5, "cannot order by 'fiscal_year'"),
        ("price", "down", 5, "direction must be"),
        ("price", "desc", 0, "limit must be >= 1"),
    ],
)
async def test_top_by_rejects_bad_arguments_clearly(
    index: VectorIndex, field: str, direction: str, limit: int, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        await index.top_by(
            field=field,
            direction=direction,  # type: ignore[arg-type]
            filters=SearchFilters(),
            limit=limit,
        )


async def test_company_and_fiscal_filters_match_the_payload(index: VectorIndex) -> None:
    await index.upsert(POINTS)
    for filters in (
        SearchFilters(companies=("NVIDIA",)),
        SearchFilters(fiscal_periods=("2027Q3",)),
        SearchFilters(fiscal_years=(2026, 2027)),
    ):
        assert await index.count(filters) == 1
    assert await index.count(SearchFilters(fiscal_years=(2026,))) == 0
    assert await index.count(SearchFilters(companies=("nvidia",))) == 0


async def test_a_period_scope_takes_the_fiscal_year_or_else_the_publication_date(
    index: VectorIndex,
) -> None:
    await index.upsert(POINTS)  # news:1 has fiscal_year 2027; the market stats have none
    fy2027 = SearchFilters(
        period=PeriodScope(
            year=2027,
            published_from=datetime(2030, 1, 1, tzinfo=UTC),
            published_before=datetime(2031, 1, 1, tzinfo=UTC),
        )
    )
    assert await index.count(fy2027) == 1
    day1_only = SearchFilters(
        period=PeriodScope(year=1999, published_from=DAY1, published_before=DAY2)
    )
    # Only the points without a fiscal year, published on DAY1: news:1 is out by its own year.
    assert await index.count(day1_only) == 4
    hits = await index.search(IndexQuery("dense", dense=basis(0), filters=day1_only))
    assert {str(h.payload["doc_id"]) for h in hits} == {
        "mkt:AAPL:1",
        "mkt:MSFT:1",
        "mkt:NVDA:1",
        "mkt:TSLA:1",
    }
