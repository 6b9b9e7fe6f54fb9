"""What every reader shares: results, sources, the document check, and file and time helpers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from tickerwire.core.errors import (
    DecodeError,
    PermanentError,
    TickerwireError,
    TooLargeError,
    ValidationError,
)
from tickerwire.core.records import RAW_SCHEMA, RawDocument, raw_document_from


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

    @classmethod
    def invalid(cls, location: str, reason: str) -> Rejection:
        """A rejection of input that breaks a rule of its format (a ValidationError)."""
        return cls(location, reason, ValidationError.__name__)


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
SUPPORTED = ", ".join(EXTENSIONS)
BOM = b"\xef\xbb\xbf"


def check_document(obj: object, *, max_body_bytes: int) -> RawDocument:
    """Check one raw-document/v1 value and its body size; raise a PermanentError with a reason.

    A record without ``"schema"`` is a raw-document/v1 (the only kind a producer sends); one that
    names another schema is refused with that reason. ``obj`` itself is never modified.
    """
    if isinstance(obj, dict):
        obj = _with_schema_tag(obj)
    doc = raw_document_from(obj)
    if doc.body is not None:
        size = len(doc.body.encode("utf-8"))
        if size > max_body_bytes:
            raise TooLargeError(
                f"$.body: {size:,} bytes of UTF-8, over the limit of {max_body_bytes:,} "
                "(TICKERWIRE_MAX_BODY_BYTES)"
            )
    return doc


def _with_schema_tag(obj: dict[str, Any]) -> dict[str, Any]:
    if "schema" not in obj:
        return {"schema": RAW_SCHEMA, **obj}
    tag = obj["schema"]
    if tag != RAW_SCHEMA:
        raise ValidationError(
            f"$.schema: {tag!r} is not a record this producer sends; "
            f"set it to {RAW_SCHEMA!r} or leave it out"
        )
    return obj


def build(location: str, obj: dict[str, Any], *, max_body_bytes: int) -> ReadResult:
    try:
        return Accepted(location, check_document(obj, max_body_bytes=max_body_bytes))
    except PermanentError as exc:
        return Rejection.from_error(location, exc)


def line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_file(source: Source, data: bytes) -> str | Rejection:
    try:
        return data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start + (len(BOM) if data.startswith(BOM) else 0)
        return Rejection(
            f"{source.display}:{line_of(data, start)}",
            f"invalid UTF-8 at byte {start}: {data[start : start + 4]!r}",
            DecodeError.__name__,
        )


def read_bytes(source: Source) -> bytes | Rejection:
    try:
        return source.path.read_bytes()
    except OSError as exc:
        return os_rejection(source.display, exc)


def read_text(source: Source) -> str | Rejection:
    """The file of ``source`` as UTF-8 text (a BOM dropped), or why it cannot be read."""
    data = read_bytes(source)
    return data if isinstance(data, Rejection) else decode_file(source, data)


def os_rejection(display: str, exc: OSError) -> Rejection:
    return Rejection(f"{display}:0", exc.strerror or str(exc), type(exc).__name__)


def file_mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def file_version(source: Source) -> int:
    """The version of what ``source`` holds when it states none: the file's modification time
    in epoch ms, so an edited file supersedes the last."""
    return epoch_ms(file_mtime(source.path))


def rfc3339(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z"


DOC_ID_BAD = re.compile(r"[^A-Za-z0-9._:/@-]")
_DOC_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")


def doc_id_from(text: str, prefix: str) -> str:
    """``text`` when it is a valid doc_id, else ``prefix`` plus a stable hash of it."""
    text = text.strip()
    if 0 < len(text) <= 256 and _DOC_ID_OK.match(text):
        return text
    return f"{prefix}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]}"
