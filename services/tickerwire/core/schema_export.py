"""The JSON Schemas of ``schemas/`` are generated from the pydantic records, never written by hand.

:func:`generate` turns each record model into a self-contained draft 2020-12 schema (nested
models inlined, closed objects, ``schema`` as a required constant); ``tickerwire schemas
generate`` writes them and ``tickerwire schemas check`` (and tests/unit/test_schemas.py) fails
when the committed files differ. Change a record in core/records.py, then regenerate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from tickerwire.core.records import (
    MARKET_FIELDS,
    ChunkRecord,
    CommitRecord,
    DlqRecord,
    EntityRecord,
    ExampleRecord,
    FeedbackRecord,
    QueryLogRecord,
    RawDocument,
    VectorRecord,
)
from tickerwire.core.schemas import SCHEMA_NAMES, schema_dir

__all__ = ["MODELS", "check", "generate", "render", "write"]

#: The record model behind each schema file.
MODELS: Mapping[str, type[Any]] = {
    "raw-document.v1": RawDocument,
    "chunk.v1": ChunkRecord,
    "commit.v1": CommitRecord,
    "vector.v1": VectorRecord,
    "dlq.v1": DlqRecord,
    "entity.v1": EntityRecord,
    "query-log.v1": QueryLogRecord,
    "feedback.v1": FeedbackRecord,
    "example.v1": ExampleRecord,
}
assert tuple(MODELS) == SCHEMA_NAMES

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_ID = "https://tickerwire.dev/schemas/{name}.json"
_NULL = {"type": "null"}


class _Generator(GenerateJsonSchema):
    """pydantic's generator without per-field titles (they only repeat the names)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """``node`` with every ``$ref`` into ``$defs`` replaced by its target (no recursion here)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = dict(defs[ref.removeprefix("#/$defs/")])
            target.pop("title", None)
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return _inline(target | extra, defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _drop_null_defaults(props: dict[str, Any]) -> None:
    for prop in props.values():
        if prop.get("default", 0) is None:
            del prop["default"]


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """``prop`` without its ``null`` alternative (a field that may be absent but not null)."""
    options = prop.get("anyOf")
    if not isinstance(options, list) or _NULL not in options:
        return prop
    rest = [o for o in options if o != _NULL]
    out = {k: v for k, v in prop.items() if k != "anyOf"}
    return (rest[0] | out) if len(rest) == 1 else {"anyOf": rest} | out


def _raw_document_rules(schema: dict[str, Any]) -> None:
    """The raw document's conditional rules: an upsert's content, and the facts in metadata."""
    schema["if"] = {"properties": {"op": {"const": "upsert"}}, "required": ["op"]}
    schema["then"] = {"required": list(RawDocument.UPSERT_REQUIRED)}
    text = {"type": ["string", "null"], "minLength": 1}
    schema["properties"]["metadata"]["properties"] = {"company": text, "fiscal_period": text}
    numbers: dict[str, dict[str, Any]] = {
        key: {"type": ["number", "null"]} for key in MARKET_FIELDS
    }
    numbers["volume"] = {"type": ["number", "null"], "minimum": 0}
    schema["allOf"] = [
        {
            "if": {
                "properties": {"doc_type": {"const": "market_stats"}},
                "required": ["doc_type"],
            },
            "then": {"properties": {"metadata": {"properties": numbers}}},
        }
    ]


def generate(name: str) -> dict[str, Any]:
    """The JSON Schema of record ``name`` (``raw-document.v1``, ...), built from its model."""
    model = MODELS[name]
    raw = model.model_json_schema(schema_generator=_Generator, mode="validation")
    defs = raw.pop("$defs", {})
    body: dict[str, Any] = _inline(raw, defs)
    props: dict[str, Any] = body["properties"]
    props["schema"] = {"const": name.replace(".", "/")}
    _drop_null_defaults(props)
    for field in getattr(model, "NOT_NULL", ()):
        props[field] = _not_null(props[field])
    schema: dict[str, Any] = {
        "$schema": _DRAFT,
        "$id": _ID.format(name=name),
        "title": name.replace(".", "/"),
        "description": " ".join((model.__doc__ or "").split()),
        "type": "object",
        "additionalProperties": False,
        "required": ["schema", *body.get("required", [])],
        "properties": props,
    }
    if model is RawDocument:
        _raw_document_rules(schema)
    return schema


def render(name: str) -> str:
    """The file text of schema ``name``: two-space JSON, keys in field order, newline at end."""
    return json.dumps(generate(name), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path | None = None) -> list[Path]:
    """Write every schema file into ``directory`` (``schemas/`` by default); return the paths."""
    target = directory or schema_dir()
    paths = []
    for name in SCHEMA_NAMES:
        path = target / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


def check(directory: Path | None = None) -> list[str]:
    """Names of the schema files in ``directory`` that differ from what the models generate."""
    target = directory or schema_dir()
    stale = []
    for name in SCHEMA_NAMES:
        path = target / f"{name}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            stale.append(name)
    return stale
