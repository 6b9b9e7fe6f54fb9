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

Rooms: one module per format (:mod:`.jsonl`, :mod:`.market_csv`, :mod:`.feed`, :mod:`.html_page`),
the checks and helpers they share (:mod:`.checks`), and ticker extraction (:mod:`.tickers`); this
module discovers files and dispatches them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from tickerwire.produce.readers.checks import (
    EXTENSIONS,
    SUPPORTED,
    Accepted,
    ReadResult,
    Rejection,
    Source,
    check_document,
    os_rejection,
)
from tickerwire.produce.readers.feed import read_feed
from tickerwire.produce.readers.html_page import read_html
from tickerwire.produce.readers.jsonl import read_jsonl
from tickerwire.produce.readers.market_csv import CSV_COLUMNS, read_csv
from tickerwire.produce.readers.tickers import extract_ticker_mentions

__all__ = [
    "CSV_COLUMNS",
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
            yield os_rejection(display, exc)
            continue
        if not exists:
            yield Rejection(f"{display}:0", "No such file or directory", "FileNotFoundError")
        elif not is_dir:
            if path.suffix.lower() in EXTENSIONS:
                yield Source(path, display, path)
            else:
                yield Rejection.invalid(
                    f"{display}:0",
                    f"unsupported file type {path.suffix or '(none)'!r}; expected {SUPPORTED}",
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
        yield os_rejection(str(where), exc)
    if not found and not errors:
        yield Rejection.invalid(
            f"{display}:0", f"directory has no files of a supported type ({SUPPORTED})"
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
