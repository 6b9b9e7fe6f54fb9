"""Typed records for every topic, mirroring the JSON Schemas in ``schemas/`` field for field.

Every record carries ``schema`` (``"raw-document/v1"``, ``"chunk/v1"``, …) as its discriminator;
:func:`parse_record` dispatches on it. Models are frozen and reject unknown fields. ``to_bytes()``
writes compact UTF-8 JSON; an optional field left unset is omitted (readers get its default),
while one set explicitly, even to ``None``, is written, so a record read with ``from_bytes()``
writes back the same JSON. ``from_bytes()`` is as strict as the JSON Schema (strict types, RFC 3339
date-times with an offset, absolute URIs).

The unit tests check that each model and its JSON Schema agree; change both together.
"""

from __future__ import annotations

from tickerwire.core.records._base import (
    DOC_ID_PATTERN,
    RAW_SCHEMA,
    TICKER_PATTERN,
    ContentType,
    DocType,
    Op,
    Stage,
    format_date_time,
)
from tickerwire.core.records._dlq import DlqHeader, DlqOriginal, DlqRecord
from tickerwire.core.records._documents import (
    MARKET_FIELDS,
    ChunkRecord,
    CommitRecord,
    DocFacts,
    DocumentFields,
    RawDocument,
    SparseValues,
    VectorRecord,
    fiscal_year_of,
)
from tickerwire.core.records._entities import EntityRecord
from tickerwire.core.records._learning import (
    ExampleRecord,
    FeedbackRecord,
    LoggedCitation,
    LoggedHit,
    LoggedPassage,
    QueryLogRecord,
)
from tickerwire.core.records._parse import (
    AnyRecord,
    parse_raw_document,
    parse_record,
    raw_document_from,
)

__all__ = [
    "DOC_ID_PATTERN",
    "MARKET_FIELDS",
    "RAW_SCHEMA",
    "TICKER_PATTERN",
    "AnyRecord",
    "ChunkRecord",
    "CommitRecord",
    "ContentType",
    "DlqHeader",
    "DlqOriginal",
    "DlqRecord",
    "DocFacts",
    "DocType",
    "DocumentFields",
    "EntityRecord",
    "ExampleRecord",
    "FeedbackRecord",
    "LoggedCitation",
    "LoggedHit",
    "LoggedPassage",
    "Op",
    "QueryLogRecord",
    "RawDocument",
    "SparseValues",
    "Stage",
    "VectorRecord",
    "fiscal_year_of",
    "format_date_time",
    "parse_raw_document",
    "parse_record",
    "raw_document_from",
]
