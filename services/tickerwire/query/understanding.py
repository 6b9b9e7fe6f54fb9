"""Query understanding (pure, no I/O): the companies, tickers and periods a question names.

Companies and tickers are looked up in an :class:`EntityRegistry` that is learned from the
documents as they stream in (see :mod:`tickerwire.pipeline.entities`), never from a list in code.
Periods are read by rule: "FY2018", "fiscal 2027", "third quarter of fiscal 2027", "Q2 2023",
"2019", and "last quarter" / "last year" relative to ``as_of`` (or now).

:func:`plan` then decides, per aspect, whether it may filter (only when the match is unambiguous)
or only boost, so a wrong guess cannot hide the answer; :mod:`payload_match` says whether an
index payload belongs to a period.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tickerwire.core.ports import PeriodScope
from tickerwire.pipeline.entities import MAX_NAME_WORDS, EntityObservation, normalize_name

AppliedAs = Literal["filter", "boost"]


# --- the registry -------------------------------------------------------------------------------


class EntityRegistry:
    """Known tickers and the names that stand for them, folded from entity observations.

    Single-threaded (the query service's event loop); lookups are dict reads.
    """

    def __init__(self, observations: Iterable[EntityObservation] = ()) -> None:
        self._tickers: set[str] = set()
        self._names: dict[str, set[str]] = {}
        self._display: dict[str, str] = {}
        for obs in observations:
            self.observe(obs)

    def observe(self, obs: EntityObservation) -> None:
        """Learn one observation; idempotent (the topic is read at least once)."""
        ticker = obs.ticker.upper()
        self._tickers.add(ticker)
        if obs.name is None:
            return
        key = normalize_name(obs.name)
        if not key:
            return
        self._names.setdefault(key, set()).add(ticker)
        self._display.setdefault(key, obs.name)

    def __len__(self) -> int:
        return len(self._tickers)

    def is_ticker(self, symbol: str) -> bool:
        """True when some document listed ``symbol`` as a ticker."""
        return symbol in self._tickers

    def tickers_for(self, key: str) -> frozenset[str]:
        """Tickers of the normalised name ``key`` (empty when unknown)."""
        return frozenset(self._names.get(key, ()))

    def display_name(self, key: str) -> str:
        """The first spelling seen of the normalised name ``key``."""
        return self._display.get(key, key)


# --- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A period a question names: a year, or a quarter of it; fiscal or calendar.

    ``relative`` marks periods derived from "last quarter" / "last year"; ``comparative`` marks a
    period used as a reference point ("since 2019", "from 2018 to 2019", "guidance for FY2023"):
    the documents sought are not necessarily of that period.
    """

    year: int
    quarter: int | None = None
    fiscal: bool = False
    relative: bool = False
    comparative: bool = False

    @property
    def label(self) -> str:
        """``FY2027``, ``2027Q3`` or ``2019``: the notation of documents' ``fiscal_period``."""
        if self.quarter is not None:
            return f"{self.year}Q{self.quarter}"
        return f"FY{self.year}" if self.fiscal else str(self.year)

    def scope(self) -> PeriodScope:
        """The index filter for this period's year (:func:`period_matches` then checks the
        quarter): a point's own fiscal year, or else its publication date."""
        start, end = self.publication_window()
        return PeriodScope(year=self.year, published_from=start, published_before=end)

    def publication_window(self) -> tuple[datetime, datetime]:
        """When documents about this period are published: [start, end) in UTC.

        A fiscal year Y may end anywhere from early in calendar Y to January of Y+1, and its
        reports come out up to about four months later, so fiscal periods take calendar
        Y-1 .. April Y+1. A calendar year takes Y .. March Y+1 (annual reports); a calendar
        quarter takes the quarter and the three months after it (its results).
        """
        y = self.year
        if self.fiscal:
            return datetime(y - 1, 1, 1, tzinfo=UTC), datetime(y + 1, 5, 1, tzinfo=UTC)
        if self.quarter is None:
            return datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 4, 1, tzinfo=UTC)
        start_month = 3 * (self.quarter - 1) + 1
        end_month = start_month + 6
        end = datetime(y + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=UTC)
        return datetime(y, start_month, 1, tzinfo=UTC), end


_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3}
_ORDINALS["4th"] = 4
_YEAR = r"((?:19|20)\d{2}|'?\d{2}\b)"
_FY = r"(?:fy|fiscal(?:\s+year)?)"
_QWORD = r"(first|second|third|fourth|1st|2nd|3rd|4th)[\s-]+quarter"
_QNUM = r"q([1-4])"
#: Patterns for periods, most specific first; each consumes its text so later ones skip it.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "third quarter of fiscal 2027", "fourth-quarter fiscal 2027", "second quarter of FY2023"
    ("qword_fy", re.compile(rf"\b{_QWORD}\s+(?:of\s+)?(?:the\s+)?{_FY}\s*{_YEAR}", re.I)),
    # "Q3 FY2027", "Q2 of FY2023", "Q3 fiscal 2027", "fiscal Q3 2027"
    ("qnum_fy", re.compile(rf"\b{_QNUM}\s*(?:of\s+)?{_FY}\s*{_YEAR}", re.I)),
    ("fy_qnum", re.compile(rf"\b{_FY}\s*{_YEAR}\s*{_QNUM}\b", re.I)),
    ("fyq_year", re.compile(rf"\bfiscal\s+{_QNUM}\s+{_YEAR}", re.I)),
    # "third quarter of 2026", "Q2 2023", "2023 Q2", "2023Q2"
    ("qword_year", re.compile(rf"\b{_QWORD}\s+(?:of\s+)?{_YEAR}", re.I)),
    ("qnum_year", re.compile(rf"\b{_QNUM}\s*(?:of\s+)?{_YEAR}", re.I)),
    ("year_qnum", re.compile(rf"\b((?:19|20)\d{{2}})\s*{_QNUM}\b", re.I)),
    # "FY2018", "FY 2021", "FY18", "fiscal 2027", "fiscal year 2027"
    ("fy", re.compile(rf"\b{_FY}\s*{_YEAR}", re.I)),
    # "2019"
    ("year", re.compile(r"\b((?:19|20)\d{2})\b")),
)
_RELATIVE = re.compile(
    r"\b(last|previous|prior|this|current)\s+(fiscal\s+)?(quarter|year)\b", re.IGNORECASE
)
#: Words before a year that make it a reference point rather than the period asked about.
_COMPARATIVE = re.compile(
    r"\b(since|from|between|after|before|until|through|to|and|vs\.?|versus|compared\s+(?:to|with)"
    r"|than|over)\s+(?:the\s+)?(?:fiscal\s+(?:year\s+)?|fy\s*)?$",
    re.IGNORECASE,
)


#: Words of a forward-looking question: the period it names is the one forecast, and the
#: documents that forecast it come from before it.
_FORWARD = re.compile(
    r"\b(forecast\w*|expect\w*|outlook|guidance|guiding|projection\w*|anticipat\w*)\b",
    re.IGNORECASE,
)


def _year(text: str) -> int:
    digits = text.lstrip("'")
    return int(digits) if len(digits) == 4 else 2000 + int(digits)


def _period_from(kind: str, m: re.Match[str], comparative: bool) -> Period:
    g = m.groups()
    if kind == "qword_fy":
        return Period(_year(g[1]), _ORDINALS[g[0].lower()], fiscal=True, comparative=comparative)
    if kind == "qnum_fy":
        return Period(_year(g[1]), int(g[0]), fiscal=True, comparative=comparative)
    if kind == "fy_qnum":
        return Period(_year(g[0]), int(g[1]), fiscal=True, comparative=comparative)
    if kind == "fyq_year":
        return Period(_year(g[1]), int(g[0]), fiscal=True, comparative=comparative)
    if kind == "qword_year":
        return Period(_year(g[1]), _ORDINALS[g[0].lower()], comparative=comparative)
    if kind == "qnum_year":
        return Period(_year(g[1]), int(g[0]), comparative=comparative)
    if kind == "year_qnum":
        return Period(_year(g[0]), int(g[1]), comparative=comparative)
    if kind == "fy":
        return Period(_year(g[0]), fiscal=True, comparative=comparative)
    return Period(_year(g[0]), comparative=comparative)


def _relative_period(unit: str, which: str, fiscal: bool, ref: datetime) -> Period:
    back = which in ("last", "previous", "prior")
    if unit == "year":
        return Period(ref.year - 1 if back else ref.year, fiscal=fiscal, relative=True)
    quarter = (ref.month - 1) // 3 + 1
    year = ref.year
    if back:
        quarter -= 1
        if quarter == 0:
            year, quarter = year - 1, 4
    return Period(year, quarter, fiscal=fiscal, relative=True)


def extract_periods(question: str, *, as_of: datetime | None = None) -> list[Period]:
    """The periods ``question`` names, in order of appearance, without duplicates.

    Relative periods ("last quarter", "this year") count back from ``as_of`` (or now); they are
    calendar periods unless the question says "fiscal". In a forward-looking question ("what is
    it forecasting for FY2023?") every period is a reference point, like "since 2019".
    """
    text = question
    forward = bool(_FORWARD.search(question))
    found: list[tuple[int, Period]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            comparative = forward or bool(_COMPARATIVE.search(text[: m.start()]))
            found.append((m.start(), _period_from(kind, m, comparative)))
        # Blank out what matched (same length) so a less specific pattern cannot take it again.
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    ref = as_of or datetime.now(UTC)
    for m in _RELATIVE.finditer(question):
        which, fiscal, unit = m.group(1).lower(), bool(m.group(2)), m.group(3).lower()
        found.append((m.start(), _relative_period(unit, which, fiscal, ref)))
    out: list[Period] = []
    seen: set[tuple[int, int | None, bool]] = set()
    for _, period in sorted(found, key=lambda item: item[0]):
        key = (period.year, period.quarter, period.fiscal)
        if key not in seen:
            seen.add(key)
            out.append(period)
    return out


# --- companies and tickers ----------------------------------------------------------------------

_TOKEN = re.compile(r"\$?[A-Za-z0-9][A-Za-z0-9.&\-]*(?:['\u2019]s)?")
_TICKER_TOKEN = re.compile(r"^\$?([A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z])?)(?:['\u2019]s)?$")


@dataclass(frozen=True, slots=True)
class Entities:
    """Tickers a question names, the company names it used, and each name's tickers."""

    tickers: tuple[str, ...] = ()
    companies: tuple[str, ...] = ()
    #: One entry per mention: the tickers it may stand for (several when a name is ambiguous).
    mentions: tuple[frozenset[str], ...] = ()


def extract_entities(question: str, registry: EntityRegistry) -> Entities:
    """Companies and tickers of ``question`` that the registry knows.

    A name is matched on its normalised words, longest first, and only where the question writes
    it with a capital or a digit, so common words that happen to be names ("block", "target") are
    not taken in lower-case prose. A ticker is taken when written in capitals (one-letter tickers
    only as ``$V``). A question in lower case thus names nothing: it is searched as written.
    """
    tokens = _TOKEN.findall(question)
    tickers: list[str] = []
    companies: list[str] = []
    mentions: list[frozenset[str]] = []
    i = 0
    while i < len(tokens):
        matched = 0
        for n in range(min(MAX_NAME_WORDS, len(tokens) - i), 0, -1):
            window = tokens[i : i + n]
            head = window[0].lstrip("$")
            if not (head[:1].isupper() or head[:1].isdigit()):
                continue
            key = normalize_name(" ".join(window))
            names = registry.tickers_for(key) if key else frozenset()
            if names:
                companies.append(registry.display_name(key))
                mentions.append(names)
                tickers.extend(sorted(names))
                matched = n
                break
        if not matched:
            m = _TICKER_TOKEN.match(tokens[i])
            if m:
                symbol = m.group(1)
                if registry.is_ticker(symbol) and (len(symbol) > 1 or tokens[i][0] == "$"):
                    mentions.append(frozenset({symbol}))
                    tickers.append(symbol)
            matched = 1
        i += matched
    return Entities(
        tickers=tuple(dict.fromkeys(tickers)),
        companies=tuple(dict.fromkeys(companies)),
        mentions=tuple(mentions),
    )


# --- what was understood, and how it applies ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Understanding:
    """What a question names, and how each aspect is applied to the search.

    ``ticker_filter`` / ``period_filter`` are set only when that aspect is unambiguous; otherwise
    ``boost_tickers`` / ``boost_periods`` re-rank candidates without removing any.
    """

    entities: Entities = field(default_factory=Entities)
    periods: tuple[Period, ...] = ()
    ticker_filter: tuple[str, ...] = ()
    period_filter: Period | None = None
    boost_tickers: frozenset[str] = frozenset()
    boost_periods: tuple[Period, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the question named nothing the search can use."""
        return not self.entities.tickers and not self.periods

    @property
    def filters(self) -> bool:
        """True when some aspect filters."""
        return bool(self.ticker_filter) or self.period_filter is not None

    @property
    def boosts(self) -> bool:
        """True when some aspect only boosts."""
        return bool(self.boost_tickers) or bool(self.boost_periods)

    @property
    def applied_as(self) -> AppliedAs | None:
        """``filter`` when anything filters, else ``boost`` when anything boosts, else None."""
        if self.filters:
            return "filter"
        return "boost" if self.boosts else None

    def to_json(self) -> dict[str, Any] | None:
        """The ``understood`` object of the API (None when nothing was recognised)."""
        if self.empty:
            return None
        return {
            "tickers": list(self.entities.tickers),
            "companies": list(self.entities.companies),
            "periods": [p.label for p in self.periods],
            "applied_as": self.applied_as,
            "applied": {
                "tickers": None
                if not self.entities.tickers
                else ("filter" if self.ticker_filter else "boost"),
                "periods": None
                if not self.periods
                else ("filter" if self.period_filter is not None else "boost"),
            },
        }


def plan(entities: Entities, periods: Iterable[Period]) -> Understanding:
    """Decide filter or boost for each aspect.

    - Tickers filter when the question resolves to exactly one ticker; otherwise they boost.
    - A period filters only when the tickers filter too and the question names exactly one
      period, stated outright (not relative like "last year", not a reference point like
      "since 2019"). Without a company a year is too often context ("sales in 2019 vs 2018"), and
      documents of other companies would be hidden for nothing; with one, company and period
      together name one report, and when the index lacks it, retrieval should find nothing.
    """
    periods = tuple(periods)
    one_ticker = len(entities.tickers) == 1
    ticker_filter = entities.tickers if one_ticker else ()
    boost_tickers = frozenset() if one_ticker else frozenset(entities.tickers)
    plain = [p for p in periods if not p.relative and not p.comparative]
    period_filter = plain[0] if one_ticker and len(periods) == 1 and len(plain) == 1 else None
    boost_periods = () if period_filter is not None else periods
    return Understanding(
        entities=entities,
        periods=periods,
        ticker_filter=ticker_filter,
        period_filter=period_filter,
        boost_tickers=boost_tickers,
        boost_periods=boost_periods,
    )


def understand(
    question: str, registry: EntityRegistry, *, as_of: datetime | None = None
) -> Understanding:
    """Extract companies, tickers and periods from ``question`` and plan how they apply."""
    return plan(extract_entities(question, registry), extract_periods(question, as_of=as_of))
