"""RSS and Atom feeds (feedparser): one ``news`` document per item."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from tickerwire.core.errors import DecodeError
from tickerwire.core.records import RAW_SCHEMA
from tickerwire.produce.readers.checks import (
    ReadResult,
    Rejection,
    Source,
    build,
    decode_file,
    doc_id_from,
    epoch_ms,
    line_of,
    read_bytes,
    rfc3339,
)
from tickerwire.produce.readers.tickers import (
    extract_ticker_mentions,
    split_tickers,
    ticker_from_term,
    unique,
)

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
        symbol = ticker_from_term(str(tag.get("term") or ""), explicit=explicit)
        if symbol:
            found.append(symbol)
    for key, value in entry.items():
        if (key == "tickers" or key.endswith("_tickers")) and isinstance(value, str):
            found.extend(split_tickers(value))
    found.extend(extract_ticker_mentions(text))
    return unique(found)


def read_feed(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """RSS or Atom (via feedparser): one ``news`` document per item.

    doc_id is the item's guid/id (or link; hashed when it is not a valid doc_id), published_at its
    published or updated date, version that date in epoch ms (updated wins), tickers its ticker-like
    categories, a ``tickers`` extension element (``<tw:tickers>AAPL, MSFT</tw:tickers>``) and
    ``$TICKER`` / ``(NASDAQ: X)`` mentions in the title and body.
    """
    data = read_bytes(source)
    if isinstance(data, Rejection):
        yield data
        return
    declared = _XML_ENCODING.match(data)
    encoding = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    if encoding.replace("_", "-") in ("utf-8", "utf8"):
        decoded = decode_file(source, data)
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
    starts = [line_of(data, m.start()) for m in _ITEM_TAG.finditer(data)]
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
        "doc_id": doc_id_from(identity, "feed"),
        "op": "upsert",
        "version": epoch_ms(updated or when),
        "source": feed_title,
        "doc_type": "news",
        "title": title or body[:80],
        "body": body,
        "content_type": content_type,
        "url": link,
        "published_at": rfc3339(when),
        "tickers": _feed_tickers(entry, f"{title}\n{body}"),
        "language": language,
        "metadata": metadata,
    }
    return build(location, obj, max_body_bytes=max_body_bytes)
