"""Shared parts of the records: field types, patterns, the record base class, error wording."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeAlias

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
)
from pydantic_core import PydanticSerializationError

from tickerwire.core.errors import ValidationError
from tickerwire.core.schemas import FORMAT_CHECKER, decode_json
from tickerwire.core.topics import Stage as Stage

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


class UniqueItems:
    """Marks a tuple whose items must be unique in its JSON Schema (a validator checks it)."""

    def __get_pydantic_json_schema__(
        self, core_schema: Any, handler: pydantic.GetJsonSchemaHandler
    ) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        schema["uniqueItems"] = True
        return schema


Tickers = Annotated[tuple[Ticker, ...], UniqueItems()]


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


def format_date_time(value: datetime) -> str:
    """RFC 3339 with ``Z`` for UTC and milliseconds when that is all the precision there is."""
    spec = "milliseconds" if value.microsecond % 1000 == 0 and value.microsecond else "auto"
    text = value.isoformat(timespec=spec)
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_parse_date_time),
    PlainSerializer(format_date_time, return_type=str, when_used="json"),
]
Uri = Annotated[
    str, AfterValidator(_check_uri), WithJsonSchema({"type": "string", "format": "uri"})
]


def check_unique(values: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must be unique")
    return values


class RecordBase(BaseModel):
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
            raise ValidationError(pydantic_reason(exc)) from exc


class UniqueTickersBase(RecordBase):
    @field_validator("tickers", check_fields=False)
    @classmethod
    def _tickers_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_unique(value, "tickers")


def pydantic_reason(exc: pydantic.ValidationError) -> str:
    """``$.path: message`` for each error, joined with ``; `` (pydantic's wording)."""
    parts = []
    for err in exc.errors(include_url=False):
        path = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{'schema' if p == 'schema_' else p}"
            for p in err["loc"]
        )
        parts.append(f"{path}: {err['msg']}")
    return "; ".join(parts)
