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

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self, TypeAlias
from uuid import UUID

import pydantic
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticSerializationError

from tickerwire.core.errors import ValidationError
from tickerwire.core.schemas import FORMAT_CHECKER, decode_json
from tickerwire.core.topics import Stage

__all__ = [
    "RAW_SCHEMA",
    "AnyRecord",
    "ChunkRecord",
    "CommitRecord",
    "ContentType",
    "DlqHeader",
    "DlqOriginal",
    "DlqRecord",
    "DocType",
    "Op",
    "RawDocument",
    "SparseValues",
    "Stage",
    "VectorRecord",
    "parse_record",
]

RAW_SCHEMA = "raw-document/v1"

DocType: TypeAlias = Literal["news", "filing", "market_stats", "research", "transcript", "other"]
ContentType: TypeAlias = Literal["text/plain", "text/html", "text/markdown"]
Op: TypeAlias = Literal["upsert", "delete"]

DOC_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$"
TICKER_PATTERN = r"^[A-Z][A-Z0-9.\-]{0,11}$"
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"

DocId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=DOC_ID_PATTERN)]
Ticker = Annotated[str, StringConstraints(pattern=TICKER_PATTERN)]
Language = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
Version = Annotated[int, Field(ge=0)]


def _check_uri(value: str) -> str:
    # Kept as the producer wrote it: pydantic's AnyUrl would normalise it (trailing slash, case).
    if not FORMAT_CHECKER.conforms(value, "uri"):
        raise ValueError(f"{value!r} is not an absolute URI")
    return value


def _parse_date_time(value: object) -> object:
    # pydantic alone would also take "1700000000" or a space separator; the schema would not.
    if isinstance(value, str):
        if not FORMAT_CHECKER.conforms(value, "date-time"):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
        return datetime.fromisoformat(value.upper())
    return value


def _format_date_time(value: datetime) -> str:
    """RFC 3339 with ``Z`` for UTC and milliseconds when that is all the precision there is."""
    spec = "milliseconds" if value.microsecond % 1000 == 0 and value.microsecond else "auto"
    text = value.isoformat(timespec=spec)
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_parse_date_time),
    PlainSerializer(_format_date_time, return_type=str, when_used="json"),
]
Uri = Annotated[
    str, AfterValidator(_check_uri), WithJsonSchema({"type": "string", "format": "uri"})
]


def _unique(values: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must be unique")
    return values


class _Record(BaseModel):
    """Shared behaviour: frozen, strict about unknown fields, compact JSON in and out."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name, field in type(self).model_fields.items():
            key = field.alias or name
            if key != "schema" and key in data and name not in self.model_fields_set:
                del data[key]
        return data

    def to_json_dict(self) -> dict[str, Any]:
        """The record as plain JSON types (what ``to_bytes`` encodes)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON, ready to be a Kafka value."""
        try:
            return self.model_dump_json().encode("utf-8")
        except PydanticSerializationError as exc:  # pragma: no cover - models hold JSON types
            raise ValidationError(f"cannot serialise {type(self).__name__}: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse one record of this kind; raises DecodeError or ValidationError with a reason."""
        decode_json(data)  # a readable DecodeError for bytes that are not UTF-8 JSON
        try:
            return cls.model_validate_json(data, strict=True)
        except pydantic.ValidationError as exc:
            raise ValidationError(_pydantic_reason(exc)) from exc


class _UniqueTickers(_Record):
    @field_validator("tickers", check_fields=False)
    @classmethod
    def _tickers_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(value, "tickers")


class RawDocument(_UniqueTickers):
    """A document as producers send it (``raw-document/v1``); an upsert needs its content fields."""

    SCHEMA_NAME: ClassVar[str] = "raw-document.v1"
    UPSERT_REQUIRED: ClassVar[tuple[str, ...]] = (
        "source",
        "doc_type",
        "title",
        "body",
        "content_type",
        "published_at",
    )

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
    tickers: tuple[Ticker, ...] = ()
    language: Language = "en"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _upsert_complete(self) -> Self:
        if self.op == "upsert":
            missing = [name for name in self.UPSERT_REQUIRED if getattr(self, name) is None]
            if missing:
                raise ValueError(f"an upsert needs {', '.join(missing)}")
        return self

    @property
    def key(self) -> bytes:
        """The Kafka key: ``doc_id`` as UTF-8."""
        return self.doc_id.encode("utf-8")


class ChunkRecord(_UniqueTickers):
    """One new or changed chunk waiting to be embedded (``chunk/v1``)."""

    SCHEMA_NAME: ClassVar[str] = "chunk.v1"

    schema_: Literal["chunk/v1"] = Field(default="chunk/v1", alias="schema")
    doc_id: DocId
    version: Version
    chunk_id: UUID
    chunk_index: Annotated[int, Field(ge=0)]
    text: str
    embed_text: str
    content_hash: Sha256Hex
    token_count: Annotated[int, Field(ge=0)]
    title: str
    url: Uri | None
    source: str
    doc_type: DocType
    tickers: tuple[Ticker, ...]
    published_at: Timestamp
    language: Language
    produced_at: Timestamp


class SparseValues(_Record):
    """A sparse vector on the wire: term indices and their weights, same length."""

    indices: tuple[Annotated[int, Field(ge=0)], ...]
    values: tuple[float, ...]

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        if len(self.indices) != len(self.values):
            raise ValueError("sparse indices and values must have the same length")
        return self


class VectorRecord(_UniqueTickers):
    """An embedded chunk (``vector/v1``): chunk fields without embed_text, plus its vectors."""

    SCHEMA_NAME: ClassVar[str] = "vector.v1"

    schema_: Literal["vector/v1"] = Field(default="vector/v1", alias="schema")
    doc_id: DocId
    version: Version
    chunk_id: UUID
    chunk_index: Annotated[int, Field(ge=0)]
    text: str
    content_hash: Sha256Hex
    token_count: Annotated[int, Field(ge=0)]
    title: str
    url: Uri | None
    source: str
    doc_type: DocType
    tickers: tuple[Ticker, ...]
    published_at: Timestamp
    language: Language
    produced_at: Timestamp
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


class CommitRecord(_Record):
    """The full chunk list of one document version (``commit/v1``); empty for a delete."""

    SCHEMA_NAME: ClassVar[str] = "commit.v1"

    schema_: Literal["commit/v1"] = Field(default="commit/v1", alias="schema")
    doc_id: DocId
    version: Version
    op: Op
    chunk_ids: tuple[UUID, ...]
    content_hash: Sha256Hex | None
    produced_at: Timestamp
    published_at: Timestamp | None

    @field_validator("chunk_ids")
    @classmethod
    def _ids_unique(cls, value: tuple[UUID, ...]) -> tuple[UUID, ...]:
        return _unique(value, "chunk_ids")


class DlqHeader(_Record):
    """One Kafka header of the original record; the value is base64 (or null)."""

    key: str
    value_b64: str | None


class DlqOriginal(_Record):
    """Where the dead-lettered record came from, with its exact bytes (base64)."""

    topic: Annotated[str, StringConstraints(min_length=1)]
    partition: Annotated[int, Field(ge=0)] | None
    offset: Annotated[int, Field(ge=0)] | None
    timestamp_ms: int | None
    key_b64: str | None
    value_b64: str
    headers: tuple[DlqHeader, ...]

    @classmethod
    def from_message(
        cls,
        *,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        offset: int | None = None,
        timestamp_ms: int | None = None,
        headers: Iterable[tuple[str, bytes | None]] = (),
    ) -> DlqOriginal:
        """Capture a Kafka message's coordinates and bytes."""
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            key_b64=_b64(key) if key is not None else None,
            value_b64=_b64(value),
            headers=tuple(
                DlqHeader(key=k, value_b64=_b64(v) if v is not None else None) for k, v in headers
            ),
        )

    def key_bytes(self) -> bytes | None:
        """The original key bytes."""
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    def value_bytes(self) -> bytes:
        """The original value bytes."""
        return base64.b64decode(self.value_b64)

    def header_list(self) -> list[tuple[str, bytes | None]]:
        """The original headers, as aiokafka takes them."""
        return [
            (h.key, base64.b64decode(h.value_b64) if h.value_b64 is not None else None)
            for h in self.headers
        ]


class DlqRecord(_Record):
    """A record a stage gave up on (``dlq/v1``), with the reason and the original bytes."""

    SCHEMA_NAME: ClassVar[str] = "dlq.v1"

    schema_: Literal["dlq/v1"] = Field(default="dlq/v1", alias="schema")
    stage: Stage
    error_class: Annotated[str, StringConstraints(min_length=1)]
    reason: str
    attempts: Annotated[int, Field(ge=1)]
    failed_at: Timestamp
    doc_id: str | None
    original: DlqOriginal

    @classmethod
    def for_error(
        cls,
        *,
        stage: Stage,
        error: BaseException,
        original: DlqOriginal,
        doc_id: str | None = None,
        attempts: int = 1,
        failed_at: datetime | None = None,
    ) -> DlqRecord:
        """A DLQ record for ``error``; uses ``error_class``/``reason`` when it is ours."""
        error_class = getattr(error, "error_class", type(error).__name__)
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        return cls(
            stage=stage,
            error_class=str(error_class),
            reason=str(reason),
            attempts=attempts,
            failed_at=failed_at or datetime.now(UTC),
            doc_id=doc_id,
            original=original,
        )


AnyRecord: TypeAlias = RawDocument | ChunkRecord | CommitRecord | VectorRecord | DlqRecord

_BY_SCHEMA: Mapping[str, type[AnyRecord]] = {
    "raw-document/v1": RawDocument,
    "chunk/v1": ChunkRecord,
    "commit/v1": CommitRecord,
    "vector/v1": VectorRecord,
    "dlq/v1": DlqRecord,
}


_SCHEMA_PREFIX = b'{"schema":"'


def parse_record(data: bytes) -> AnyRecord:
    """Parse any tickerwire record, dispatching on its ``schema`` field.

    Raises DecodeError for bytes that are not UTF-8 JSON and ValidationError for a JSON value that
    is not a known, valid record; both carry a readable reason.
    """
    if data.startswith(_SCHEMA_PREFIX):
        # Fast path for records as tickerwire writes them (``schema`` first): one parse in Rust,
        # no Python-level JSON decode. Anything unusual takes the careful path below.
        end = data.find(b'"', len(_SCHEMA_PREFIX))
        fast = _BY_SCHEMA.get(data[len(_SCHEMA_PREFIX) : end].decode("ascii", "replace"))
        if fast is not None:
            try:
                return fast.model_validate_json(data, strict=True)
            except pydantic.ValidationError:
                pass
    obj = decode_json(data)
    if not isinstance(obj, dict):
        raise ValidationError(f"$: expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("schema")
    model = _BY_SCHEMA.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(_BY_SCHEMA))
        raise ValidationError(f"$.schema: {kind!r} is not a known record schema ({known})")
    try:
        return model.model_validate_json(data, strict=True)
    except pydantic.ValidationError as exc:
        raise ValidationError(_pydantic_reason(exc)) from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pydantic_reason(exc: pydantic.ValidationError) -> str:
    """``$.path: message`` for each error, joined with ``; `` (pydantic's wording)."""
    parts = []
    for err in exc.errors(include_url=False):
        path = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{'schema' if p == 'schema_' else p}"
            for p in err["loc"]
        )
        parts.append(f"{path}: {err['msg']}")
    return "; ".join(parts)
