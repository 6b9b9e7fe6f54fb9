"""Query understanding: periods and entities extracted from questions, and filter-or-boost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tickerwire.pipeline.entities import EntityObservation, normalize_name, observations
from tickerwire.query.payload_match import parse_fiscal_period, period_matches
from tickerwire.query.understanding import (
    EntityRegistry,
    Period,
    extract_entities,
    extract_periods,
    understand,
)

AS_OF = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def registry() -> EntityRegistry:
    return EntityRegistry(
        [
            EntityObservation("TSLA", "Tesla, Inc."),
            EntityObservation("NVDA", "NVIDIA Corporation"),
            EntityObservation("MMM", "3M"),
            EntityObservation("SQ", "Block"),
            EntityObservation("JPM", "JPMorgan Chase & Co."),
            EntityObservation("GOOGL", "Alphabet Inc."),
            EntityObservation("GOOG", "Alphabet Inc."),
            EntityObservation("V"),
            EntityObservation("AMD"),
        ]
    )


def labels(question: str, as_of: datetime = AS_OF) -> list[str]:
    return [p.label for p in extract_periods(question, as_of=as_of)]


# --- periods ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is the FY2018 capital expenditure amount for 3M?", ["FY2018"]),
        ("As of FY 2021, how much did Verizon expect to pay?", ["FY2021"]),
        ("Revenue in FY18?", ["FY2018"]),
        ("What was revenue in fiscal 2027?", ["FY2027"]),
        ("What was revenue in fiscal year 2027?", ["FY2027"]),
        ("What revenue did NVIDIA report for the third quarter of fiscal 2027?", ["2027Q3"]),
        ("fourth-quarter fiscal 2027 outlook", ["2027Q4"]),
        ("the second quarter of FY2023", ["2023Q2"]),
        ("quick ratio for Q2 of FY2023", ["2023Q2"]),
        ("Q3 FY27 revenue", ["2027Q3"]),
        ("fiscal Q1 2027 Azure growth", ["2027Q1"]),
        ("As of FY2023Q1, why did guidance rise?", ["2023Q1"]),
        ("What was Tesla's revenue in 2019?", ["2019"]),
        ("Q2 2023 margin", ["2023Q2"]),
        ("2023 Q2 margin", ["2023Q2"]),
        ("sales in the third quarter of 2026", ["2026Q3"]),
        ("What drove revenue?", []),
        ("revenue of $2,019 million", []),
    ],
)
def test_periods_are_read_in_many_phrasings(question: str, expected: list[str]) -> None:
    assert labels(question) == expected


def test_fiscal_and_calendar_periods_differ_but_share_the_quarter_label() -> None:
    (fiscal,) = extract_periods("third quarter of fiscal 2027", as_of=AS_OF)
    (calendar,) = extract_periods("third quarter of 2027", as_of=AS_OF)
    assert fiscal.fiscal and not calendar.fiscal
    assert fiscal.label == calendar.label == "2027Q3"


@pytest.mark.parametrize(
    ("question", "as_of", "expected"),
    [
        ("How fast did Azure grow last quarter?", AS_OF, "2026Q3"),
        ("How fast did Azure grow last quarter?", datetime(2026, 2, 1, tzinfo=UTC), "2025Q4"),
        ("What happened this quarter?", AS_OF, "2026Q4"),
        ("What did it earn last year?", AS_OF, "2025"),
        ("What did it earn this year?", datetime(2019, 6, 1, tzinfo=UTC), "2019"),
        ("Guidance for the previous fiscal year", AS_OF, "FY2025"),
    ],
)
def test_relative_periods_count_back_from_as_of(
    question: str, as_of: datetime, expected: str
) -> None:
    (period,) = extract_periods(question, as_of=as_of)
    assert period.relative
    assert period.label == expected


def test_relative_periods_without_as_of_count_from_now() -> None:
    (period,) = extract_periods("revenue last year")
    assert period.year == datetime.now(UTC).year - 1


def test_years_used_as_reference_points_are_comparative() -> None:
    periods = extract_periods("revenue growth from FY2016 to FY2017", as_of=AS_OF)
    assert [p.label for p in periods] == ["FY2016", "FY2017"]
    assert all(p.comparative for p in periods)
    (since,) = extract_periods("How has revenue changed since 2019?", as_of=AS_OF)
    assert since.comparative
    (plain,) = extract_periods("What was revenue in 2019?", as_of=AS_OF)
    assert not plain.comparative


@pytest.mark.parametrize(
    "question",
    [
        "What production rate changes is Boeing forecasting for FY2023?",
        "What revenue outlook did NVIDIA give for the fourth quarter of fiscal 2027?",
        "How much does Verizon expect to pay in 2024?",
    ],
)
def test_the_period_of_a_forward_looking_question_is_a_reference_point(question: str) -> None:
    (period,) = extract_periods(question, as_of=AS_OF)
    assert period.comparative


# --- entities -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "tickers", "companies"),
    [
        ("What was Tesla's revenue in 2019?", ["TSLA"], ["Tesla, Inc."]),
        ("What did TESLA INC report?", ["TSLA"], ["Tesla, Inc."]),
        ("What did NVIDIA's data center business earn?", ["NVDA"], ["NVIDIA Corporation"]),
        ("What is the FY2018 capex for 3M?", ["MMM"], ["3M"]),
        ("How did JPMorgan Chase do?", ["JPM"], ["JPMorgan Chase & Co."]),
        ("Block's (formerly known as Square) FY2016 working capital", ["SQ"], ["Block"]),
        ("Where did TSLA close?", ["TSLA"], []),
        ("Did $V beat?", ["V"], []),
        ("Compare AMD and NVDA", ["AMD", "NVDA"], []),
    ],
)
def test_entities_are_found_by_learned_name_or_ticker(
    question: str, tickers: list[str], companies: list[str]
) -> None:
    found = extract_entities(question, registry())
    assert list(found.tickers) == tickers
    assert list(found.companies) == companies


@pytest.mark.parametrize(
    "question",
    [
        "a block of shares was sold",  # a name in lower-case prose is a word
        "what was tesla revenue",  # lower case: searched as written
        "What was the CEO's EPS under GAAP?",  # capitals that no document listed as a ticker
        "Is V a good letter?",  # one-letter tickers only with $
        "Who makes electric cars?",
    ],
)
def test_words_that_are_not_known_names_or_tickers_are_not_entities(question: str) -> None:
    assert extract_entities(question, registry()).tickers == ()


def test_an_empty_registry_knows_no_company() -> None:
    assert extract_entities("What was Tesla's revenue?", EntityRegistry()).tickers == ()


# --- filter or boost ----------------------------------------------------------------------------


def test_one_company_and_one_period_filter() -> None:
    u = understand("What was Tesla's revenue in 2019?", registry(), as_of=AS_OF)
    assert u.ticker_filter == ("TSLA",)
    assert u.period_filter == Period(2019)
    assert not u.boosts
    assert u.to_json() == {
        "tickers": ["TSLA"],
        "companies": ["Tesla, Inc."],
        "periods": ["2019"],
        "applied_as": "filter",
        "applied": {"tickers": "filter", "periods": "filter"},
    }


def test_a_name_with_two_tickers_only_boosts() -> None:
    u = understand("What did Alphabet earn in 2025?", registry(), as_of=AS_OF)
    assert u.ticker_filter == ()
    assert u.boost_tickers == {"GOOG", "GOOGL"}
    assert u.period_filter is None  # a period filters only alongside a company filter
    assert u.applied_as == "boost"


def test_two_companies_only_boost() -> None:
    u = understand("Compare AMD and NVIDIA in Q2 2023", registry(), as_of=AS_OF)
    assert u.ticker_filter == () and u.period_filter is None
    assert u.boost_tickers == {"AMD", "NVDA"}
    assert [p.label for p in u.boost_periods] == ["2023Q2"]


def test_a_period_without_a_company_only_boosts() -> None:
    u = understand("What is the amount of total sales in 2019?", registry(), as_of=AS_OF)
    assert u.period_filter is None
    assert [p.label for p in u.boost_periods] == ["2019"]
    assert u.to_json() is not None and u.to_json()["applied_as"] == "boost"  # type: ignore[index]


@pytest.mark.parametrize(
    "question",
    [
        "Has 3M increased its debt between FY2023 and FY2022?",  # two periods
        "How fast did NVIDIA grow last quarter?",  # relative
        "How has Tesla's revenue changed since 2019?",  # a reference point
        "What production rate changes is 3M forecasting for FY2023?",  # forward-looking
    ],
)
def test_a_company_filters_but_an_uncertain_period_only_boosts(question: str) -> None:
    u = understand(question, registry(), as_of=AS_OF)
    assert len(u.ticker_filter) == 1
    assert u.period_filter is None
    assert u.boost_periods


def test_a_question_that_names_nothing_is_empty() -> None:
    u = understand("What drives data center demand?", registry(), as_of=AS_OF)
    assert u.empty
    assert u.applied_as is None
    assert u.to_json() is None


# --- matching payloads --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FY2018", (2018, None)),
        ("2023Q2", (2023, 2)),
        ("FY2023Q1", (2023, 1)),
        ("Q3 2027", (2027, 3)),
        ("2023-05-30", (2023, None)),
        ("n/a", None),
    ],
)
def test_fiscal_periods_of_documents_parse(value: str, expected: tuple[int, int | None]) -> None:
    assert parse_fiscal_period(value) == expected


def _ts(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def test_a_documents_own_fiscal_period_wins_over_its_publication_date() -> None:
    fy2018 = {"fiscal_period": "FY2018", "published_ts": _ts(2020, 1, 1)}
    assert period_matches(Period(2018, fiscal=True), fy2018)
    assert period_matches(Period(2018), fy2018)
    assert not period_matches(Period(2020), fy2018)
    q2 = {"fiscal_period": "2023Q2"}
    assert period_matches(Period(2023, 2, fiscal=True), q2)
    assert not period_matches(Period(2023, 3, fiscal=True), q2)
    assert period_matches(Period(2023, fiscal=True), q2)
    assert period_matches(Period(2023, 3, fiscal=True), {"fiscal_year": 2023})
    assert not period_matches(Period(2022), {"fiscal_year": 2023})


def test_without_a_fiscal_period_the_publication_date_decides() -> None:
    nvda_10q = {"published_ts": _ts(2026, 11, 19, 21)}
    assert period_matches(Period(2027, 3, fiscal=True), nvda_10q)  # fiscal 2027 runs in 2026
    assert not period_matches(Period(2019), nvda_10q)
    assert period_matches(Period(2026, 3), nvda_10q)  # results come after the quarter
    assert not period_matches(Period(2026, 1), nvda_10q)
    assert period_matches(Period(2025), {"published_ts": _ts(2026, 2, 20)})  # the 10-K season
    assert not period_matches(Period(2019), {})


# --- learning names from documents --------------------------------------------------------------


#: Company names and the keys they normalise to.
NAME_KEYS = {
    "Tesla, Inc.": "tesla",
    "TESLA INC": "tesla",
    "JPMorgan Chase & Co.": "jpmorganchase",
    "The Goldman Sachs Group, Inc.": "goldmansachs",
    "Exxon Mobil Corporation": "exxonmobil",
    "ExxonMobil": "exxonmobil",
    "Amazon.com Inc.": "amazon",
    "NVIDIA's": "nvidia",
    "The Company": "",
}


@pytest.mark.parametrize(("name", "key"), NAME_KEYS.items())
def test_names_normalise_by_rule(name: str, key: str) -> None:
    assert normalize_name(name) == key


def test_documents_teach_names_from_metadata_titles_and_exchange_mentions() -> None:
    def names(**doc: object) -> set[tuple[str, str | None]]:
        fields: dict[str, object] = {"tickers": ["NVDA"], "title": "", "body": "", "metadata": {}}
        return {(o.ticker, o.name) for o in observations(**(fields | doc))}  # type: ignore[arg-type]

    assert names() == {("NVDA", None)}
    assert ("NVDA", "NVIDIA") in names(metadata={"company": "NVIDIA"})
    assert ("NVDA", "NVIDIA Corporation") in names(
        title="NVIDIA Corporation Form 10-Q for the quarter ended October 25, 2026"
    )
    assert ("NVDA", "NVIDIA Corp.") in names(
        body="Chips rallied. On Monday, NVIDIA Corp. (NASDAQ: NVDA) reported results."
    )
    tesla = observations(
        tickers=["TSLA"], title="", body="On Monday, Tesla, Inc. (NASDAQ: TSLA) said", metadata={}
    )
    assert [o.name for o in tesla] == [None, "Tesla, Inc."]
    # A mention whose ticker the document does not list teaches nothing.
    assert names(body="Foo Inc. (NYSE: FOO) said") == {("NVDA", None)}


def test_spellings_of_one_name_share_one_compaction_key() -> None:
    got = observations(
        tickers=["NVDA"],
        title="NVIDIA Corporation Form 10-Q",
        body="NVIDIA Corp. (NASDAQ: NVDA) reported.",
        metadata={"company": "NVIDIA"},
    )
    assert [o.key for o in got] == ["NVDA", "NVDA:nvidia"]


def test_a_title_names_a_company_only_for_a_single_ticker_document() -> None:
    got = observations(
        tickers=["V", "MA"], title="Visa Inc. and Mastercard settle", body="", metadata={}
    )
    assert all(o.name is None for o in got)


def test_registry_learning_is_idempotent() -> None:
    reg = EntityRegistry()
    for _ in range(3):
        reg.observe(EntityObservation("TSLA", "Tesla, Inc."))
    assert len(reg) == 1
    assert reg.tickers_for("tesla") == {"TSLA"}
