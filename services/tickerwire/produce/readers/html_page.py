"""HTML pages: one document per file, described by its head."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from tickerwire.core.records import RAW_SCHEMA
from tickerwire.produce.readers.checks import (
    DOC_ID_BAD,
    ReadResult,
    Rejection,
    Source,
    build,
    epoch_ms,
    file_mtime,
    read_text,
    rfc3339,
)
from tickerwire.produce.readers.tickers import split_tickers, unique


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


#: Head metadata (``<meta name="tickerwire:KEY">``) copied into the document's metadata.
_METADATA = ("company", "form", "fiscal_period")


def read_html(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """One document per HTML file; the body is the raw HTML (text/html), cleaned later.

    From the head: ``<title>`` (else ``og:title``, else the file name); ``tickerwire:doc_id``
    (else the path relative to the argument); ``article:published_time`` (else the file's mtime);
    ``tickerwire:tickers`` (comma-separated); ``tickerwire:doc_type`` (default ``other``);
    ``tickerwire:source`` or ``og:site_name`` (default ``file``); ``tickerwire:version`` (default
    the mtime in epoch ms); ``og:url`` or ``<link rel=canonical>``; ``<html lang>``; and
    ``tickerwire:company``, ``tickerwire:form`` and ``tickerwire:fiscal_period`` into the metadata
    (a filing's company, form and period: chunk headers and query understanding read them).
    """
    text = read_text(source)
    if isinstance(text, Rejection):
        yield text
        return
    location = f"{source.display}:1"
    head = _HeadParser()
    head.feed(text)
    head.close()
    meta = head.meta
    mtime = file_mtime(source.path)
    published = _parse_meta_time(meta.get("article:published_time", "")) or mtime
    relative = (
        source.path.relative_to(source.root).as_posix()
        if source.path != source.root
        else source.path.name
    )
    doc_id = meta.get("tickerwire:doc_id") or DOC_ID_BAD.sub("-", relative).lstrip("-._:/@")
    title = " ".join("".join(head.title_parts).split()) or meta.get("og:title") or source.path.name
    version_text = meta.get("tickerwire:version", "")
    obj: dict[str, Any] = {
        "schema": RAW_SCHEMA,
        "doc_id": doc_id,
        "op": "upsert",
        "version": int(version_text) if version_text.isdigit() else epoch_ms(mtime),
        "source": meta.get("tickerwire:source") or meta.get("og:site_name") or "file",
        "doc_type": meta.get("tickerwire:doc_type") or "other",
        "title": title,
        "body": text,
        "content_type": "text/html",
        "url": meta.get("og:url") or head.canonical or None,
        "published_at": rfc3339(published),
        "tickers": unique(split_tickers(meta.get("tickerwire:tickers", ""))),
        "language": head.lang or "en",
        "metadata": {"file": relative}
        | {key: meta[f"tickerwire:{key}"] for key in _METADATA if meta.get(f"tickerwire:{key}")},
    }
    yield build(location, obj, max_body_bytes=max_body_bytes)
