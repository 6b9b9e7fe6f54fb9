"""The document records: raw documents, their facts, chunks, vectors and commits."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from tickerwire.core.records._base import (
    ContentType,
    DocId,
    DocType,
    Language,
    Op,
    RecordBase,
    Sha256Hex,
    Tickers,
    Timestamp,
    UniqueItems,
    UniqueTickersBase,
    Uri,
    Version,
    check_unique,
)


class RawDocument(UniqueTickersBase):
    """A raw document as producers send it to tickerwire.docs.raw (key = doc_id). A newer
    version of a doc_id supersedes older ones; op=delete removes the document, and an upsert needs
    its content fields."""

    SCHEMA_NAME: ClassVar[str] = "raw-document.v1"
    UPSERT_REQUIRED: ClassVar[tuple[str, ...]] = (
        "source",
        "doc_type",
        "title",
        "body",
        "content_type",
        "published_at",
    )
    #: Optional fields that may be left out but never sent as ``null``.
    NOT_NULL: ClassVar[tuple[str, ...]] = UPSERT_REQUIRED

    schema_: Literal["raw-document/v1"] = Field(default="raw-document/v1", alias="schema")
    doc_id: DocId
    op: Op
    version: Version
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    doc_type: DocType | None = None
    title: Annotated[str, StringConstraints(max_length=1024)] | None = None
    body: str | None = None
    content_type: ContentType | None = None
    url: Uri | None = None
    published_at: Timestamp | None = None
    tickers: Tickers = ()
    language: Language = "en"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _upsert_complete(self) -> Self:
        # A before-validator would make pydantic parse JSON into Python first (slow, and strict
        # mode then refuses lists for tuples), so explicit nulls are found after the fact.
        nulls = [
            n for n in self.NOT_NULL if n in self.model_fields_set and getattr(self, n) is None
        ]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may be left out but not null")
        if self.op == "upsert":
            missing = [name for name in self.UPSERT_REQUIRED if getattr(self, name) is None]
            if missing:
                raise ValueError(f"an upsert needs {', '.join(missing)}")
        DocFacts.of(self)  # the facts in metadata have the right types
        return self

    @property
    def key(self) -> bytes:
        """The Kafka key: ``doc_id`` as UTF-8."""
        return self.doc_id.encode("utf-8")


#: The numbers a ``market_stats`` document carries in ``metadata`` (and the index stores).
MARKET_FIELDS: tuple[str, ...] = ("price", "change", "change_pct", "volume")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def fiscal_year_of(period: str) -> int | None:
    """The year ``period`` names (``FY2018`` -> 2018, ``2023Q2`` -> 2023), else None."""
    match = _YEAR.search(period)
    if match is None:
        return None
    year = int(match.group(1))
    return year if 1900 <= year <= 2100 else None


class DocFacts(RecordBase):
    """Facts of a document that every chunk and vector of it carries (all optional, omitted
    when unset): ``company`` and ``fiscal_period`` from the raw ``metadata``, ``fiscal_year``
    derived from the period, and for ``market_stats`` the market numbers."""

    company: str | None = None
    fiscal_period: str | None = None
    fiscal_year: int | None = None
    price: float | None = None
    change: float | None = None
    change_pct: float | None = None
    volume: Annotated[float, Field(ge=0)] | None = None

    @classmethod
    def of(cls, doc: RawDocument) -> DocFacts:
        """The facts in ``doc.metadata``; ValueError names a metadata value of a wrong type
        (:class:`RawDocument` checks this when it is built, so a valid document never raises).

        ``company`` and ``fiscal_period`` must be strings when present; for a ``market_stats``
        document, ``price``, ``change``, ``change_pct`` and ``volume`` must be finite numbers when
        present (other document types keep them as plain metadata).
        """
        meta = doc.metadata
        facts: dict[str, Any] = {}
        for key in ("company", "fiscal_period"):
            value = meta.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ValueError(f"$.metadata.{key}: {value!r} is not a non-empty string")
            facts[key] = value
        if "fiscal_period" in facts:
            year = fiscal_year_of(facts["fiscal_period"])
            if year is not None:
                facts["fiscal_year"] = year
        if doc.doc_type == "market_stats":
            for key in MARKET_FIELDS:
                value = meta.get(key)
                if value is None:
                    continue
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise ValueError(f"$.metadata.{key}: {value!r} is not a finite number")
                if key == "volume" and value < 0:
                    raise ValueError(f"$.metadata.volume: {value!r} is negative")
                facts[key] = float(value)
        return cls(**facts)

    def is_empty(self) -> bool:
        """True when the document has none of the facts."""
        return not self.model_fields_set


class DocumentFields(UniqueTickersBase):
    """What every chunk of a document version stores about the document (its index payload
    besides the chunk's own text and position)."""

    title: str
    url: Uri | None
    source: str
    doc_type: DocType
    tickers: Tickers
    published_at: Timestamp
    language: Language
    facts: DocFacts | None = None


class _VersionRecord(RecordBase):
    """A record about one version of one document: ``schema``, ``doc_id`` and ``version``, in
    that order at the start of the wire form (the fast parser reads ``schema`` there,
    ``_parse.parse_record``). Each record narrows ``schema`` to its own literal."""

    schema_: str = Field(alias="schema")
    doc_id: DocId
    version: Version


class _ChunkFields(DocumentFields, _VersionRecord):
    """The fields a chunk and its vector share: the version's, the document's, then the chunk's
    own (pydantic orders inherited fields base first)."""

    chunk_id: UUID
    chunk_index: Annotated[int, Field(ge=0)]
    text: str
    content_hash: Sha256Hex
    token_count: Annotated[int, Field(ge=0)]
    produced_at: Timestamp


class ChunkRecord(_ChunkFields):
    """One new or changed chunk of a document version, on tickerwire.docs.chunks (key = doc_id),
    waiting to be embedded. The document's commit/v1 record follows its chunks."""

    SCHEMA_NAME: ClassVar[str] = "chunk.v1"

    schema_: Literal["chunk/v1"] = Field(default="chunk/v1", alias="schema")
    embed_text: str


class SparseValues(RecordBase):
    """A sparse vector on the wire: term indices and their weights, same length."""

    indices: tuple[Annotated[int, Field(ge=0)], ...]
    values: tuple[float, ...]

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        if len(self.indices) != len(self.values):
            raise ValueError("sparse indices and values must have the same length")
        return self


class VectorRecord(_ChunkFields):
    """An embedded chunk on tickerwire.docs.vectors (key = doc_id): every chunk/v1 field except
    embed_text, plus its dense and sparse vectors and the model that made them."""

    SCHEMA_NAME: ClassVar[str] = "vector.v1"

    schema_: Literal["vector/v1"] = Field(default="vector/v1", alias="schema")
    dense: Annotated[tuple[float, ...], Field(min_length=1)]
    sparse: SparseValues
    model: Annotated[str, StringConstraints(min_length=1)]

    model_config = ConfigDict(protected_namespaces=())

    @classmethod
    def from_chunk(
        cls,
        chunk: ChunkRecord,
        *,
        dense: Iterable[float],
        sparse: SparseValues,
        model: str,
    ) -> VectorRecord:
        """The vector record for ``chunk`` with its embeddings."""
        fields = chunk.model_dump(exclude={"schema_", "embed_text"})
        return cls(**fields, dense=tuple(dense), sparse=sparse, model=model)


class CommitRecord(_VersionRecord):
    """The complete chunk list of one document version, on tickerwire.docs.chunks and
    tickerwire.docs.vectors (key = doc_id). Applying it deletes the document's points not in
    chunk_ids; a delete has an empty list.

    ``reused`` names the chunks this version kept from the previous one (same text, so not
    embedded again); the index stage writes ``document`` and their new ``chunk_index`` into their
    payloads in place. A version that changed only metadata reuses every chunk."""

    SCHEMA_NAME: ClassVar[str] = "commit.v1"

    schema_: Literal["commit/v1"] = Field(default="commit/v1", alias="schema")
    op: Op
    chunk_ids: Annotated[tuple[UUID, ...], UniqueItems()]
    content_hash: Sha256Hex | None
    produced_at: Timestamp
    published_at: Timestamp | None
    reused: Annotated[tuple[UUID, ...], UniqueItems()] = ()
    document: DocumentFields | None = None

    @field_validator("chunk_ids", "reused")
    @classmethod
    def _ids_unique(cls, value: tuple[UUID, ...]) -> tuple[UUID, ...]:
        return check_unique(value, "chunk_ids")

    @model_validator(mode="after")
    def _reused_are_listed(self) -> Self:
        if not set(self.reused) <= set(self.chunk_ids):
            raise ValueError("reused chunk ids must be among chunk_ids")
        return self
