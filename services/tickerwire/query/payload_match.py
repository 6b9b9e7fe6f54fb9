"""Whether an index payload matches what query understanding read: a period (the document's
own ``fiscal_period``, else its publication date) or a ticker. Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tickerwire.query.understanding import Period

_FP_FY = re.compile(r"^\s*(?:FY|fiscal\s*(?:year\s*)?)\s*((?:19|20)\d{2})\s*$", re.I)
_FP_QUARTER = re.compile(
    r"^\s*(?:FY\s*)?((?:19|20)\d{2})\s*-?\s*Q([1-4])\s*$|^\s*Q([1-4])\s*(?:FY\s*)?((?:19|20)\d{2})\s*$",
    re.I,
)
_FP_YEAR = re.compile(r"((?:19|20)\d{2})")


def parse_fiscal_period(value: str) -> tuple[int, int | None] | None:
    """``(year, quarter)`` of a document's ``fiscal_period`` ("FY2018" -> (2018, None), "2023Q2"
    -> (2023, 2), "2023-05-30" -> (2023, None)); None when it names no year."""
    m = _FP_QUARTER.match(value)
    if m:
        if m.group(1):
            return int(m.group(1)), int(m.group(2))
        return int(m.group(4)), int(m.group(3))
    m = _FP_FY.match(value)
    if m:
        return int(m.group(1)), None
    m = _FP_YEAR.search(value)
    return (int(m.group(1)), None) if m else None


def _own_period(payload: Mapping[str, Any]) -> tuple[int, int | None] | None:
    """The ``(year, quarter)`` a point declares: its ``fiscal_period``, else ``fiscal_year``."""
    fp = payload.get("fiscal_period")
    if isinstance(fp, str) and fp:
        own = parse_fiscal_period(fp)
        if own is not None:
            return own
    fy = payload.get("fiscal_year")
    if isinstance(fy, int) and not isinstance(fy, bool):
        return fy, None
    return None


def _in_period(period: Period, own: tuple[int, int | None]) -> bool:
    year, quarter = own
    if year != period.year:
        return False
    return period.quarter is None or quarter is None or quarter == period.quarter


def period_matches(period: Period, payload: Mapping[str, Any]) -> bool:
    """Whether a point belongs to ``period``.

    A document's own period wins: ``fiscal_period`` (or ``fiscal_year``) when it has one, the
    same year and, for a quarter, the same quarter or a whole-year document. Without one, its
    publication date must fall in the period's :meth:`Period.publication_window`.
    """
    own = _own_period(payload)
    if own is not None:
        return _in_period(period, own)
    ts = payload.get("published_ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return False
    start, end = period.publication_window()
    return start.timestamp() <= float(ts) < end.timestamp()


def period_declared(period: Period, payload: Mapping[str, Any]) -> bool:
    """Whether a point declares that it covers ``period`` (a filing of that fiscal period), as
    opposed to only being published while it ran (news of the time)."""
    own = _own_period(payload)
    return own is not None and _in_period(period, own)


def tickers_match(tickers: frozenset[str], payload: Mapping[str, Any]) -> bool:
    """Whether a point lists one of ``tickers``."""
    listed = payload.get("tickers")
    return isinstance(listed, list) and any(t in tickers for t in listed)
