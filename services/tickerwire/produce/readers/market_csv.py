"""CSV market statistics: one ``market_stats`` document per row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickerwire.core.errors import DecodeError
from tickerwire.core.records import RAW_SCHEMA
from tickerwire.produce.readers.checks import (
    ReadResult,
    Rejection,
    Source,
    build,
    file_version,
    read_text,
    rfc3339,
)
from tickerwire.produce.readers.tickers import TICKER

CSV_COLUMNS = ("ticker", "price", "change", "change_pct", "volume", "as_of")
_CLOSE = time(16, 0)


def _close_of(day: date) -> datetime:
    """The US market close (16:00 New York time) on ``day``, in UTC."""
    try:
        new_york = ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:  # pragma: no cover - no tz database: assume EST
        return datetime.combine(day, time(21, 0), UTC)
    return datetime.combine(day, _CLOSE, new_york).astimezone(UTC)


def _parse_as_of(value: str) -> tuple[datetime, str]:
    """(instant, calendar date) of an ``as_of`` cell: a date means that day's close."""
    value = value.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return _close_of(day), day.isoformat()
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"as_of: {value!r} is not a date (YYYY-MM-DD) or date-time") from None
    if moment.tzinfo is None:
        raise ValueError(f"as_of: {value!r} has no UTC offset")
    return moment, moment.date().isoformat()


def _number(column: str, value: str, *, percent: bool = False) -> Decimal:
    text = value.strip().replace(",", "").replace("_", "")
    if percent:
        text = text.removesuffix("%")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{column}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{column}: {value!r} is not a finite number")
    return number


def _signed(number: Decimal, suffix: str = "") -> str:
    return f"{'+' if number > 0 else ''}{number}{suffix}"


def _market_doc(row: Mapping[str, str], *, version: int) -> dict[str, Any]:
    ticker = (row.get("ticker") or "").strip().upper()
    if not TICKER.match(ticker):
        raise ValueError(f"ticker: {row.get('ticker')!r} is not a ticker symbol")
    price = _number("price", row["price"])
    change = _number("change", row["change"])
    change_pct = _number("change_pct", row["change_pct"], percent=True)
    volume = _number("volume", row["volume"])
    if volume < 0 or volume != volume.to_integral_value():
        raise ValueError(f"volume: {row['volume']!r} is not a whole number of shares")
    as_of, day = _parse_as_of(row.get("as_of") or "")
    title = f"{ticker} market statistics {day}"
    direction = "up" if change > 0 else "down" if change < 0 else "unchanged"
    move = f"{direction} {abs(change)} ({_signed(change_pct, '%')})" if change else direction
    shares = f"{int(volume):,}"
    body = (
        f"{ticker} last traded at {price} as of {row['as_of'].strip()}, {move}, "
        f"on volume of {shares} shares.\n\n"
        f"Ticker: {ticker}\nAs of: {row['as_of'].strip()}\nPrice: {price}\n"
        f"Change: {_signed(change)}\nChange %: {_signed(change_pct, '%')}\nVolume: {shares}\n"
    )
    extra = {k: v for k, v in row.items() if k and k not in CSV_COLUMNS and k != "source" and v}
    return {
        "schema": RAW_SCHEMA,
        "doc_id": f"mkt:{ticker}:{day}",
        "op": "upsert",
        "version": version,
        "source": (row.get("source") or "").strip() or "market-data",
        "doc_type": "market_stats",
        "title": title,
        "body": body,
        "content_type": "text/plain",
        "url": None,
        "published_at": rfc3339(as_of),
        "tickers": [ticker],
        "language": "en",
        "metadata": {
            "price": float(price),
            "change": float(change),
            "change_pct": float(change_pct),
            "volume": int(volume),
            "as_of": row["as_of"].strip(),
            **extra,
        },
    }


def read_csv(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """Market statistics: one ``market_stats`` document per row of a CSV with a header.

    Columns ``ticker, price, change, change_pct, volume, as_of`` are required, ``source`` is
    optional, and other columns go to metadata. The doc_id is ``mkt:<TICKER>:<as_of date>``; the
    version is the file's modification time (epoch ms), so an edited file supersedes the last.
    """
    text = read_text(source)
    if isinstance(text, Rejection):
        yield text
        return
    version = file_version(source)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    seen: dict[str, int] = {}
    while True:
        start = reader.line_num + 1
        location = f"{source.display}:{start}"
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield Rejection(location, f"bad CSV: {exc}", DecodeError.__name__)
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            missing = [column for column in CSV_COLUMNS if column not in header]
            if missing:
                yield Rejection.invalid(
                    location,
                    f"missing column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}",
                )
                return
            continue
        if len(cells) != len(header):
            yield Rejection.invalid(location, f"expected {len(header)} fields, got {len(cells)}")
            continue
        try:
            obj = _market_doc(dict(zip(header, cells, strict=True)), version=version)
        except ValueError as exc:
            yield Rejection.invalid(location, str(exc))
            continue
        first = seen.setdefault(obj["doc_id"], start)
        if first != start:
            yield Rejection.invalid(
                location, f"duplicate row for {obj['doc_id']} (first at line {first})"
            )
            continue
        yield build(location, obj, max_body_bytes=max_body_bytes)
    if header is None:
        yield Rejection.invalid(f"{source.display}:1", "empty CSV file")
