"""SearchService with query understanding: what reaches the index, what is filtered or boosted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from tickerwire.core.ports import (
    HybridParams,
    IndexQuery,
    PeriodScope,
    ScoredHit,
    SearchFilters,
    SparseVector,
    Watermark,
)
from tickerwire.core.settings import Settings
from tickerwire.pipeline.entities import EntityObservation
from tickerwire.query.api import create_app
from tickerwire.query.search import SearchService, apply_understanding
from tickerwire.query.understanding import EntityRegistry, Period, Understanding

AS_OF = datetime(2026, 11, 27, tzinfo=UTC)


def _ts(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def point(doc_id: str, tickers: list[str], published: float, **extra: Any) -> dict[str, Any]:
    return {"doc_id": doc_id, "tickers": tickers, "published_ts": published, **extra}


#: The index's own ranking, best first (what a plain search returns).
CORPUS = [
    point("tsla-news-2026", ["TSLA"], _ts(2026, 10, 21)),
    point("nvda-news-2026", ["NVDA"], _ts(2026, 11, 18)),
    point("tsla-8k-2026", ["TSLA"], _ts(2026, 10, 21)),
    point("msft-10q", ["MSFT"], _ts(2026, 10, 28)),
    point("nvda-10q", ["NVDA"], _ts(2026, 11, 19)),
    point("mmm-2022", ["MMM"], _ts(2020, 1, 1), fiscal_period="FY2022"),
    point("mmm-2018", ["MMM"], _ts(2020, 1, 1), fiscal_period="FY2018"),
    point("goog-2025", ["GOOGL", "GOOG"], _ts(2025, 5, 1)),
]


@dataclass
class FakeIndex:
    """Returns CORPUS in order, honouring the ticker filter; records every call."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    backend: str = "fake"

    async def search(self, query: IndexQuery) -> list[ScoredHit]:
        filters, limit, mode = query.filters, query.limit, query.mode
        self.calls.append({"filters": filters, "limit": limit, "mode": mode})
        rows = [
            p for p in CORPUS if not filters.tickers or set(p["tickers"]) & set(filters.tickers)
        ]
        return [
            ScoredHit(id=p["doc_id"], score=1.0 / (i + 1), payload=p)
            for i, p in enumerate(rows[:limit])
        ]

    async def watermark(self) -> Watermark:
        return Watermark(published_ts=None, indexed_ts=None)


class FakeEmbedder:
    async def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


class FakeSparse:
    def encode_query(self, text: str) -> SparseVector:
        return SparseVector(indices=(1,), values=(1.0,))


def service(index: FakeIndex, *, prefetch: int = 100) -> SearchService:
    reg = EntityRegistry(
        [
            EntityObservation("TSLA", "Tesla, Inc."),
            EntityObservation("NVDA", "NVIDIA Corporation"),
            EntityObservation("MSFT", "Microsoft Corporation"),
            EntityObservation("MMM", "3M"),
            EntityObservation("GOOGL", "Alphabet Inc."),
            EntityObservation("GOOG", "Alphabet Inc."),
        ]
    )
    return SearchService(
        embedder=FakeEmbedder(),  # type: ignore[arg-type]
        sparse=FakeSparse(),  # type: ignore[arg-type]
        index=index,  # type: ignore[arg-type]
        hybrid=HybridParams(prefetch=prefetch),
        registry=reg,
    )


def ids(hits: Sequence[ScoredHit]) -> list[str]:
    return [h.id for h in hits]


async def test_a_question_that_names_nothing_searches_exactly_as_without_understanding() -> None:
    on, off = FakeIndex(), FakeIndex()
    a = await service(on).search("What drives chip demand?", k=3)
    b = await service(off).search("What drives chip demand?", k=3, understand=False)
    assert on.calls == off.calls == [{"filters": SearchFilters(), "limit": 3, "mode": "hybrid"}]
    assert ids(a.hits) == ids(b.hits) == ["tsla-news-2026", "nvda-news-2026", "tsla-8k-2026"]
    assert a.understood is None and b.understood is None


async def test_understand_false_turns_off_only_understanding() -> None:
    index = FakeIndex()
    user = SearchFilters(doc_types=("filing",), as_of=AS_OF)
    result = await service(index).search(
        "What was Tesla's revenue in 2019?", k=2, mode="dense", filters=user, understand=False
    )
    # The caller's own filters, mode and k still apply; nothing comes from the question.
    assert index.calls == [{"filters": user, "limit": 2, "mode": "dense"}]
    assert ids(result.hits) == ["tsla-news-2026", "nvda-news-2026"]
    assert result.understood is None


async def test_company_and_period_without_evidence_for_that_period_find_nothing() -> None:
    index = FakeIndex()
    result = await service(index).search(
        "What was Tesla's revenue in 2019?", k=5, filters=SearchFilters(as_of=AS_OF)
    )
    assert index.calls[0]["filters"].tickers == ("TSLA",)
    assert index.calls[0]["filters"].as_of == AS_OF
    assert result.hits == []
    assert result.understood is not None
    assert result.understood["applied_as"] == "filter"
    assert result.understood["periods"] == ["2019"]


async def test_company_and_fiscal_quarter_keep_the_documents_of_that_period() -> None:
    index = FakeIndex()
    result = await service(index).search(
        "What revenue did NVIDIA report for the third quarter of fiscal 2027?", k=5
    )
    assert ids(result.hits) == ["nvda-news-2026", "nvda-10q"]
    assert index.calls[0]["limit"] == 100  # the candidate set is as deep as hybrid's prefetch


async def test_a_documents_fiscal_period_decides_the_period_filter() -> None:
    result = await service(FakeIndex()).search("What was the FY2018 capex of 3M?", k=5)
    assert ids(result.hits) == ["mmm-2018"]


async def test_scores_stay_the_indexs_own() -> None:
    result = await service(FakeIndex()).search("What was the FY2018 capex of 3M?", k=5)
    assert [h.score for h in result.hits] == [0.5]  # rank 2 of the 3M-filtered set


async def test_an_ambiguous_company_boosts_without_hiding_anything() -> None:
    index = FakeIndex()
    plain = await service(FakeIndex()).search("What did Alphabet earn?", k=8, understand=False)
    result = await service(index).search("What did Alphabet earn?", k=8)
    assert index.calls[0]["filters"].tickers == ()
    assert ids(result.hits)[0] == "goog-2025"
    assert sorted(ids(result.hits)) == sorted(ids(plain.hits))
    assert result.understood is not None
    assert result.understood["applied_as"] == "boost"
    assert result.understood["tickers"] == ["GOOG", "GOOGL"]


async def test_two_companies_boost_both_and_keep_the_rest() -> None:
    result = await service(FakeIndex()).search("Compare Microsoft and NVIDIA", k=8)
    top = ids(result.hits)[:3]
    assert set(top) == {"nvda-news-2026", "msft-10q", "nvda-10q"}
    assert len(result.hits) == len(CORPUS)


def test_a_boost_lifts_a_match_but_not_from_far_below_the_top() -> None:
    hits = [ScoredHit(id=str(i), score=1.0, payload={"tickers": []}) for i in range(1, 101)]
    for rank in (11, 30, 90):
        hits[rank - 1] = ScoredHit(id=str(rank), score=1.0, payload={"tickers": ["X"]})
    u = Understanding(boost_tickers=frozenset({"X"}))
    ranked = ids(apply_understanding(hits, u))
    assert ranked[0] == "11"  # near the top: lifted to it
    assert 10 < ranked.index("30") < 29  # lifted past rank 14 and below, not to the top
    assert 50 < ranked.index("90") < 89  # from far below: lifted a little
    assert sorted(ranked, key=int) == [str(i) for i in range(1, 101)]  # nothing removed


def test_under_a_period_filter_a_report_of_the_period_outranks_news_of_the_time() -> None:
    q3 = Period(year=2027, quarter=3, fiscal=True)
    news = point("preview", ["NVDA"], _ts(2026, 11, 10))  # published in the window, no period
    report = point("10q", ["NVDA"], _ts(2026, 11, 19), fiscal_period="2027Q3")
    other = point("fy26", ["NVDA"], _ts(2026, 11, 19), fiscal_period="FY2026")
    hits = [ScoredHit(id=p["doc_id"], score=1.0, payload=p) for p in (news, other, report)]
    u = Understanding(ticker_filter=("NVDA",), period_filter=q3, periods=(q3,))
    assert ids(apply_understanding(hits, u)) == ["10q", "preview"]


async def test_the_callers_ticker_filter_wins_and_understood_tickers_only_boost() -> None:
    index = FakeIndex()
    result = await service(index).search(
        "What was Tesla's revenue in 2019?", k=5, filters=SearchFilters(tickers=("NVDA",))
    )
    assert index.calls[0]["filters"].tickers == ("NVDA",)
    assert ids(result.hits) == ["nvda-news-2026", "nvda-10q"]
    assert result.understood is not None and result.understood["applied_as"] == "boost"


async def test_k_bounds_the_hits_after_reranking() -> None:
    result = await service(FakeIndex()).search("Compare Microsoft and NVIDIA", k=2)
    assert len(result.hits) == 2


def test_the_search_api_takes_understand_and_returns_understood() -> None:
    app = create_app(settings=Settings(), search=service(FakeIndex()))
    client = TestClient(app)
    on = client.post("/v1/search", json={"query": "What was Tesla's revenue in 2019?"}).json()
    assert on["hits"] == []
    assert on["understood"]["tickers"] == ["TSLA"]
    assert on["understood"]["applied_as"] == "filter"
    off = client.post(
        "/v1/search", json={"query": "What was Tesla's revenue in 2019?", "understand": False}
    ).json()
    assert off["understood"] is None
    assert len(off["hits"]) == 8
    bad = client.post("/v1/search", json={"query": "x", "understand": "maybe"})
    assert bad.status_code == 422


async def test_an_unambiguous_period_narrows_the_index_search_itself() -> None:
    index = FakeIndex()
    await service(index).search("What was the FY2018 capex of 3M?", k=5)
    scope = index.calls[0]["filters"].period
    assert scope == PeriodScope(
        year=2018,
        published_from=datetime(2017, 1, 1, tzinfo=UTC),
        published_before=datetime(2019, 5, 1, tzinfo=UTC),
    )
    await service(index).search("What was the FY2018 capex of 3M?", k=5, understand=False)
    assert index.calls[1]["filters"].period is None


async def test_periods_that_only_boost_do_not_narrow_the_index_search() -> None:
    index = FakeIndex()
    await service(index).search("3M capex in FY2018 versus FY2022", k=5)
    assert index.calls[0]["filters"].period is None
