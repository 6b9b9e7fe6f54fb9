"""Feed readers: turn files into raw-document/v1 records, or into rejections that say where and why.

Pure parsing, no Kafka. Every reader yields, in file order, either :class:`Accepted` (a valid
:class:`~tickerwire.core.records.RawDocument`, already checked against the JSON Schema and the body
size limit) or :class:`Rejection` (``location`` is ``path:line``, plus a readable reason and an
error class). A bad record never stops the rest of its file.

Locations: JSONL and CSV give the record's line, a feed item the line of its ``<item>``/``<entry>``
tag, an HTML file line 1, and invalid UTF-8 the line of the first bad byte. Line 0 means the file
as a whole (missing, unreadable, not a supported type).

Files are dispatched by extension: ``.jsonl``/``.ndjson``, ``.csv``, ``.xml``/``.rss``/``.atom``,
``.html``/``.htm``. A directory is walked recursively (hidden entries skipped, sorted order).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import feedparser

from tickerwire.core.errors import (
    DecodeError,
    PermanentError,
    TickerwireError,
    TooLargeError,
    ValidationError,
)
from tickerwire.core.records import RAW_SCHEMA, TICKER_PATTERN, RawDocument, raw_document_from
from tickerwire.core.schemas import decode_json

__all__ = [
    "EXTENSIONS",
    "Accepted",
    "ReadResult",
    "Rejection",
    "Source",
    "check_document",
    "discover",
    "extract_ticker_mentions",
    "read_csv",
    "read_feed",
    "read_html",
    "read_jsonl",
    "read_paths",
    "read_source",
]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid document and where it came from (``path:line``)."""

    location: str
    document: RawDocument


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input record that cannot be produced: where (``path:line``), why, and the error class."""

    location: str
    reason: str
    error_class: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"

    @classmethod
    def from_error(cls, location: str, error: TickerwireError) -> Rejection:
        """A rejection carrying ``error``'s reason and class."""
        return cls(location, error.reason, error.error_class)


ReadResult: TypeAlias = Accepted | Rejection


@dataclass(frozen=True, slots=True)
class Source:
    """One input file: its path, its name in locations, and the argument it was found under."""

    path: Path
    display: str
    root: Path

    @property
    def kind(self) -> str:
        """``jsonl``, ``csv``, ``feed`` or ``html`` (from the extension)."""
        return EXTENSIONS[self.path.suffix.lower()]


#: File extension → reader kind.
EXTENSIONS: Mapping[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".xml": "feed",
    ".rss": "feed",
    ".atom": "feed",
    ".html": "html",
    ".htm": "html",
}
_SUPPORTED = ", ".join(EXTENSIONS)
_BOM = b"\xef\xbb\xbf"


# --- shared checks ----------------------------------------------------------------------------


def check_document(obj: object, *, max_body_bytes: int) -> RawDocument:
    """Check one raw-document/v1 value and its body size; raise a PermanentError with a reason."""
    doc = raw_document_from(obj)
    if doc.body is not None:
        size = len(doc.body.encode("utf-8"))
        if size > max_body_bytes:
            raise TooLargeError(
                f"$.body: {size:,} bytes of UTF-8, over the limit of {max_body_bytes:,}"
            )
    return doc


def _build(location: str, obj: dict[str, Any], *, max_body_bytes: int) -> ReadResult:
    try:
        return Accepted(location, check_document(obj, max_body_bytes=max_body_bytes))
    except PermanentError as exc:
        return Rejection.from_error(location, exc)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode_file(source: Source, data: bytes) -> str | Rejection:
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start + (len(_BOM) if data.startswith(_BOM) else 0)
        return Rejection(
            f"{source.display}:{_line_of(data, start)}",
            f"invalid UTF-8 at byte {start}: {data[start : start + 4]!r}",
            DecodeError.__name__,
        )


def _read_bytes(source: Source) -> bytes | Rejection:
    try:
        return source.path.read_bytes()
    except OSError as exc:
        return _os_rejection(source.display, exc)


def _os_rejection(display: str, exc: OSError) -> Rejection:
    return Rejection(f"{display}:0", exc.strerror or str(exc), type(exc).__name__)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _rfc3339(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z"


_DOC_ID_BAD = re.compile(r"[^A-Za-z0-9._:/@-]")
_DOC_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")


def _doc_id_from(text: str, prefix: str) -> str:
    """``text`` when it is a valid doc_id, else ``prefix`` plus a stable hash of it."""
    text = text.strip()
    if 0 < len(text) <= 256 and _DOC_ID_OK.match(text):
        return text
    return f"{prefix}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]}"


# --- tickers ----------------------------------------------------------------------------------

_TICKER = re.compile(TICKER_PATTERN)
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


def _ticker_from_term(term: str, *, explicit: bool) -> str | None:
    term = term.strip()
    match = _CATEGORY_TICKER.match(term)
    if match is None:
        return None
    symbol = match.group(1)
    prefixed = match.group(0) != symbol
    if not (explicit or prefixed) and symbol in _NOT_TICKERS:
        return None
    return symbol if _TICKER.match(symbol) else None


def _split_tickers(value: str) -> list[str]:
    out = []
    for part in re.split(r"[,\s;]+", value):
        symbol = _ticker_from_term(part.upper(), explicit=True) if part else None
        if symbol:
            out.append(symbol)
    return out


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- JSONL ------------------------------------------------------------------------------------


def read_jsonl(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """One raw-document/v1 record per line; blank lines are skipped, each line stands alone."""
    try:
        handle = source.path.open("rb")
    except OSError as exc:
        yield _os_rejection(source.display, exc)
        return
    with handle:
        lineno = 0
        try:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.removeprefix(_BOM) if lineno == 1 else raw
                if not line.strip():
                    continue
                location = f"{source.display}:{lineno}"
                try:
                    obj = decode_json(line.rstrip(b"\r\n"))
                except DecodeError as exc:
                    # The location already names the line; keep only the column.
                    reason = exc.reason.replace("at line 1 column", "at column", 1)
                    yield Rejection(location, reason, exc.error_class)
                    continue
                if not isinstance(obj, dict):
                    yield Rejection(
                        location,
                        f"$: expected a JSON object, got {type(obj).__name__}",
                        ValidationError.__name__,
                    )
                    continue
                yield _build(location, obj, max_body_bytes=max_body_bytes)
        except OSError as exc:
            yield Rejection(f"{source.display}:{lineno + 1}", str(exc), type(exc).__name__)


# --- CSV market statistics --------------------------------------------------------------------

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
    if not _TICKER.match(ticker):
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
        "published_at": _rfc3339(as_of),
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
    data = _read_bytes(source)
    if isinstance(data, Rejection):
        yield data
        return
    text = _decode_file(source, data)
    if isinstance(text, Rejection):
        yield text
        return
    version = _epoch_ms(_mtime(source.path))
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
                yield Rejection(
                    location,
                    f"missing column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}",
                    ValidationError.__name__,
                )
                return
            continue
        if len(cells) != len(header):
            yield Rejection(
                location,
                f"expected {len(header)} fields, got {len(cells)}",
                ValidationError.__name__,
            )
            continue
        try:
            obj = _market_doc(dict(zip(header, cells, strict=True)), version=version)
        except ValueError as exc:
            yield Rejection(location, str(exc), ValidationError.__name__)
            continue
        first = seen.setdefault(obj["doc_id"], start)
        if first != start:
            yield Rejection(
                location,
                f"duplicate row for {obj['doc_id']} (first at line {first})",
                ValidationError.__name__,
            )
            continue
        yield _build(location, obj, max_body_bytes=max_body_bytes)
    if header is None:
        yield Rejection(f"{source.display}:1", "empty CSV file", ValidationError.__name__)


# --- RSS / Atom -------------------------------------------------------------------------------

_ITEM_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_HTML_MARKUP = re.compile(r"<[A-Za-z/!][^>]*>|&[A-Za-z]+;|&#\d+;")


def _struct_to_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    year, month, day, hour, minute, second = value[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _feed_body(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(body, content type) from the entry's content or summary."""
    details: list[Mapping[str, Any]] = list(entry.get("content") or [])
    if entry.get("summary_detail"):
        details.append(entry["summary_detail"])
    elif entry.get("summary"):
        details.append({"value": entry["summary"], "type": "text/html"})
    for detail in details:
        value = str(detail.get("value") or "")
        if not value.strip():
            continue
        declared = str(detail.get("type") or "text/plain")
        is_html = "html" in declared and _HTML_MARKUP.search(value) is not None
        return value, "text/html" if is_html else "text/plain"
    return None


def _feed_tickers(entry: Mapping[str, Any], text: str) -> list[str]:
    found: list[str] = []
    for tag in entry.get("tags") or []:
        scheme = f"{tag.get('scheme') or ''} {tag.get('label') or ''}".lower()
        explicit = any(word in scheme for word in ("ticker", "symbol", "stock"))
        symbol = _ticker_from_term(str(tag.get("term") or ""), explicit=explicit)
        if symbol:
            found.append(symbol)
    for key, value in entry.items():
        if (key == "tickers" or key.endswith("_tickers")) and isinstance(value, str):
            found.extend(_split_tickers(value))
    found.extend(extract_ticker_mentions(text))
    return _unique(found)


def read_feed(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """RSS or Atom (via feedparser): one ``news`` document per item.

    doc_id is the item's guid/id (or link; hashed when it is not a valid doc_id), published_at its
    published or updated date, version that date in epoch ms (updated wins), tickers its ticker-like
    categories, a ``tickers`` extension element (``<tw:tickers>AAPL, MSFT</tw:tickers>``) and
    ``$TICKER`` / ``(NASDAQ: X)`` mentions in the title and body.
    """
    data = _read_bytes(source)
    if isinstance(data, Rejection):
        yield data
        return
    declared = _XML_ENCODING.match(data)
    encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    if encoding.replace("_", "-") in ("utf-8", "utf8"):
        decoded = _decode_file(source, data)
        if isinstance(decoded, Rejection):
            yield decoded
            return
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    entries = list(parsed.entries)
    if not entries:
        problem = parsed.get("bozo_exception")
        line = getattr(problem, "getLineNumber", lambda: 0)() if problem else 0
        reason = f"not a valid RSS/Atom feed: {problem}" if problem else "feed has no items"
        yield Rejection(f"{source.display}:{line}", reason, DecodeError.__name__)
        return
    starts = [_line_of(data, m.start()) for m in _ITEM_TAG.finditer(data)]
    feed = parsed.feed
    feed_title = str(feed.get("title") or "").strip()
    language = str(feed.get("language") or "en").strip() or "en"
    for index, entry in enumerate(entries):
        line = starts[index] if len(starts) == len(entries) else index + 1
        location = f"{source.display}:{line}"
        yield _build_feed_item(
            location,
            entry,
            feed_title=feed_title or source.path.stem,
            language=language,
            max_body_bytes=max_body_bytes,
        )


def _build_feed_item(
    location: str,
    entry: dict[str, Any],
    *,
    feed_title: str,
    language: str,
    max_body_bytes: int,
) -> ReadResult:
    identity = str(entry.get("id") or entry.get("link") or "").strip()
    if not identity:
        return Rejection(location, "item has neither a guid/id nor a link", "ValidationError")
    # dict.get: feedparser's own get() maps a missing "updated" to "published", with a warning.
    published = _struct_to_datetime(dict.get(entry, "published_parsed"))
    updated = _struct_to_datetime(dict.get(entry, "updated_parsed"))
    when = published or updated
    if when is None:
        return Rejection(
            location, "item has no parseable pubDate/published/updated date", "ValidationError"
        )
    content = _feed_body(entry)
    title = str(entry.get("title") or "").strip()
    if content is None:
        return Rejection(location, "item has no content, description or summary", "ValidationError")
    body, content_type = content
    link = str(entry.get("link") or "").strip() or None
    categories = [str(t.get("term")) for t in entry.get("tags") or [] if t.get("term")]
    metadata: dict[str, Any] = {"feed": feed_title, "guid": identity}
    if categories:
        metadata["categories"] = categories
    if entry.get("author"):
        metadata["author"] = str(entry["author"])
    obj: dict[str, Any] = {
        "schema": RAW_SCHEMA,
        "doc_id": _doc_id_from(identity, "feed"),
        "op": "upsert",
        "version": _epoch_ms(updated or when),
        "source": feed_title,
        "doc_type": "news",
        "title": title or body[:80],
        "body": body,
        "content_type": content_type,
        "url": link,
        "published_at": _rfc3339(when),
        "tickers": _feed_tickers(entry, f"{title}\n{body}"),
        "language": language,
        "metadata": metadata,
    }
    return _build(location, obj, max_body_bytes=max_body_bytes)


# --- HTML -------------------------------------------------------------------------------------


class _HeadParser(HTMLParser):
    """Collects <title>, <meta name|property=… content=…>, <link rel=canonical> and <html lang>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.lang: str | None = None
        self._in_title = False
        self._seen_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "html" and values.get("lang"):
            self.lang = values["lang"]
        elif tag == "title" and not self._seen_title:
            self._in_title = True
        elif tag == "meta":
            name = (values.get("name") or values.get("property") or "").strip().lower()
            if name and "content" in values:
                self.meta.setdefault(name, values["content"].strip())
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = self.canonical or values.get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self._seen_title = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)


def _parse_meta_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def read_html(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """One document per HTML file; the body is the raw HTML (text/html), cleaned later.

    From the head: ``<title>`` (else ``og:title``, else the file name); ``tickerwire:doc_id``
    (else the path relative to the argument); ``article:published_time`` (else the file's mtime);
    ``tickerwire:tickers`` (comma-separated); ``tickerwire:doc_type`` (default ``other``);
    ``tickerwire:source`` or ``og:site_name`` (default ``file``); ``tickerwire:version`` (default
    the mtime in epoch ms); ``og:url`` or ``<link rel=canonical>``; ``<html lang>``.
    """
    data = _read_bytes(source)
    if isinstance(data, Rejection):
        yield data
        return
    text = _decode_file(source, data)
    if isinstance(text, Rejection):
        yield text
        return
    location = f"{source.display}:1"
    head = _HeadParser()
    head.feed(text)
    head.close()
    meta = head.meta
    mtime = _mtime(source.path)
    published = _parse_meta_time(meta.get("article:published_time", "")) or mtime
    relative = (
        source.path.relative_to(source.root).as_posix()
        if source.path != source.root
        else source.path.name
    )
    doc_id = meta.get("tickerwire:doc_id") or _DOC_ID_BAD.sub("-", relative).lstrip("-._:/@")
    title = " ".join("".join(head.title_parts).split()) or meta.get("og:title") or source.path.name
    version_text = meta.get("tickerwire:version", "")
    obj: dict[str, Any] = {
        "schema": RAW_SCHEMA,
        "doc_id": doc_id,
        "op": "upsert",
        "version": int(version_text) if version_text.isdigit() else _epoch_ms(mtime),
        "source": meta.get("tickerwire:source") or meta.get("og:site_name") or "file",
        "doc_type": meta.get("tickerwire:doc_type") or "other",
        "title": title,
        "body": text,
        "content_type": "text/html",
        "url": meta.get("og:url") or head.canonical or None,
        "published_at": _rfc3339(published),
        "tickers": _unique(_split_tickers(meta.get("tickerwire:tickers", ""))),
        "language": head.lang or "en",
        "metadata": {"file": relative},
    }
    yield _build(location, obj, max_body_bytes=max_body_bytes)


# --- dispatch ---------------------------------------------------------------------------------

_READERS: Mapping[str, Callable[..., Iterator[ReadResult]]] = {
    "jsonl": read_jsonl,
    "csv": read_csv,
    "feed": read_feed,
    "html": read_html,
}


def discover(paths: Iterable[str | Path]) -> Iterator[Source | Rejection]:
    """The input files under ``paths`` in order, or a rejection for a path that cannot be used."""
    for arg in paths:
        path = Path(arg)
        display = str(arg)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as exc:
            yield _os_rejection(display, exc)
            continue
        if not exists:
            yield Rejection(f"{display}:0", "No such file or directory", "FileNotFoundError")
        elif not is_dir:
            if path.suffix.lower() in EXTENSIONS:
                yield Source(path, display, path)
            else:
                yield Rejection(
                    f"{display}:0",
                    f"unsupported file type {path.suffix or '(none)'!r}; expected {_SUPPORTED}",
                    ValidationError.__name__,
                )
        else:
            yield from _walk(path, display)


def _walk(root: Path, display: str) -> Iterator[Source | Rejection]:
    errors: list[OSError] = []
    found = 0
    for folder, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in EXTENSIONS:
                continue
            path = Path(folder) / name
            found += 1
            yield Source(path, f"{display.rstrip('/')}/{path.relative_to(root).as_posix()}", root)
    for exc in errors:
        where = exc.filename if exc.filename else display
        yield _os_rejection(str(where), exc)
    if not found and not errors:
        yield Rejection(
            f"{display}:0",
            f"directory has no files of a supported type ({_SUPPORTED})",
            ValidationError.__name__,
        )


def read_source(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """Every record of one file, by its extension."""
    return _READERS[source.kind](source, max_body_bytes=max_body_bytes)


def read_paths(paths: Iterable[str | Path], *, max_body_bytes: int) -> Iterator[ReadResult]:
    """Every record of every file under ``paths`` (files, or directories walked recursively)."""
    for item in discover(paths):
        if isinstance(item, Rejection):
            yield item
        else:
            yield from read_source(item, max_body_bytes=max_body_bytes)
