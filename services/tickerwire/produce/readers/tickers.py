"""Ticker symbols in free text, feed categories and comma-separated lists."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tickerwire.core.records import TICKER_PATTERN

TICKER = re.compile(TICKER_PATTERN)
_EXCHANGES = r"NASDAQ|Nasdaq|NYSE(?: American| Arca)?|AMEX|NYSEARCA|CBOE|TSX|LSE|OTC(?:QX|QB)?"
_MENTIONS = (
    re.compile(r"(?<![\w$])\$([A-Z]{1,5}(?:\.[A-Z]{1,2})?)\b"),
    re.compile(rf"\b(?:{_EXCHANGES})\s*:\s*([A-Z]{{1,5}}(?:\.[A-Z]{{1,2}})?)\b"),
)
#: Upper-case category terms that are topics, not symbols.
_NOT_TICKERS = frozenset(
    [
        "AI",
        "CEO",
        "CFO",
        "CPI",
        "ECB",
        "EPS",
        "ESG",
        "ETF",
        "EU",
        "FDA",
        "FED",
        "FOMC",
        "FX",
        "GDP",
        "IPO",
        "LNG",
        "M&A",
        "PMI",
        "SEC",
        "UK",
        "US",
        "USA",
        "USD",
    ]
)
_CATEGORY_TICKER = re.compile(r"^(?:(?:" + _EXCHANGES + r")\s*:\s*)?([A-Z]{1,5}(?:\.[A-Z]{1,2})?)$")


def extract_ticker_mentions(text: str) -> list[str]:
    """Symbols written as ``$NVDA`` or ``(NASDAQ: NVDA)`` in ``text``, in order, without repeats."""
    found: dict[str, None] = {}
    for pattern in _MENTIONS:
        for match in pattern.finditer(text):
            found.setdefault(match.group(1), None)
    return list(found)


def ticker_from_term(term: str, *, explicit: bool) -> str | None:
    term = term.strip()
    match = _CATEGORY_TICKER.match(term)
    if match is None:
        return None
    symbol = match.group(1)
    prefixed = match.group(0) != symbol
    if not (explicit or prefixed) and symbol in _NOT_TICKERS:
        return None
    return symbol if TICKER.match(symbol) else None


def split_tickers(value: str) -> list[str]:
    out = []
    for part in re.split(r"[,\s;]+", value):
        symbol = ticker_from_term(part.upper(), explicit=True) if part else None
        if symbol:
            out.append(symbol)
    return out


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
