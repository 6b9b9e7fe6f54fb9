"""The JSON Schemas of ``schemas/``: loading, cached validators, and readable validation errors.

A schema is named like the files (``raw-document.v1``) or like a record's discriminator
(``raw-document/v1``); both work everywhere here. Formats ``date-time``, ``uri`` and ``uuid`` are
enforced (through ``rfc3339-validator`` and ``rfc3986-validator``, which jsonschema picks up).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as JsonSchemaError
from jsonschema.exceptions import best_match

from tickerwire.core.errors import ConfigError, DecodeError, ValidationError

__all__ = [
    "FORMAT_CHECKER",
    "SCHEMA_NAMES",
    "decode_json",
    "iter_errors",
    "load_schema",
    "schema_dir",
    "validate",
    "validator",
]

#: Every record schema, by file stem.
SCHEMA_NAMES = (
    "raw-document.v1",
    "chunk.v1",
    "commit.v1",
    "vector.v1",
    "dlq.v1",
    "entity.v1",
    "query-log.v1",
    "feedback.v1",
    "example.v1",
)

#: Checks date-time (RFC 3339, offset required), uri (absolute) and uuid, among others.
FORMAT_CHECKER: FormatChecker = Draft202012Validator.FORMAT_CHECKER

_ENV_DIR = "TICKERWIRE_SCHEMAS_DIR"
_MAX_REASONS = 3


def schema_dir() -> Path:
    """The folder holding the ``*.json`` schemas and ``topics.yaml``.

    Looked up in order: ``$TICKERWIRE_SCHEMAS_DIR``; ``schemas/`` inside the installed package
    (a wheel built with it force-included as ``tickerwire/schemas``); the repository's ``schemas/``.
    """
    override = os.environ.get(_ENV_DIR)
    candidates = [Path(override)] if override else []
    here = Path(__file__).resolve()
    candidates += [here.parents[1] / "schemas", here.parents[3] / "schemas"]
    for candidate in candidates:
        if (candidate / "raw-document.v1.json").is_file():
            return candidate
    raise ConfigError(
        "cannot find the tickerwire JSON Schemas; looked in "
        + ", ".join(str(c) for c in candidates)
        + f" (set {_ENV_DIR})"
    )


def _stem(name: str) -> str:
    stem = name.removesuffix(".json").replace("/", ".")
    if stem not in SCHEMA_NAMES:
        raise ConfigError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    return stem


@cache
def _load(stem: str) -> dict[str, Any]:
    path = schema_dir() / f"{stem}.json"
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load schema {path}: {exc}") from exc
    Draft202012Validator.check_schema(schema)
    return schema


def load_schema(name: str) -> dict[str, Any]:
    """The schema document for ``name`` (a copy; safe to change)."""
    loaded = _load(_stem(name))
    copy: dict[str, Any] = json.loads(json.dumps(loaded))
    return copy


@cache
def _validator(stem: str) -> Draft202012Validator:
    return Draft202012Validator(_load(stem), format_checker=FORMAT_CHECKER)


def validator(name: str) -> Draft202012Validator:
    """A cached validator for ``name`` that enforces formats."""
    return _validator(_stem(name))


def _path(error: JsonSchemaError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: JsonSchemaError) -> str:
    return f"{_path(error)}: {error.message}"


def iter_errors(name: str, obj: object) -> Iterator[str]:
    """Every violation of ``obj`` against ``name``, as ``$.path: message``."""
    for error in sorted(validator(name).iter_errors(obj), key=lambda e: list(e.absolute_path)):
        yield _describe(error)


def validate(name: str, obj: object) -> None:
    """Raise ValidationError unless ``obj`` is valid against schema ``name``.

    The reason names the JSON path and the problem, e.g.
    ``$.published_at: 'yesterday' is not a 'date-time'``; the most relevant error comes first and
    at most three are listed.
    """
    errors = list(validator(name).iter_errors(obj))
    if not errors:
        return
    first = best_match(errors)
    rest = sorted(
        (e for e in errors if e is not first), key=lambda e: [str(p) for p in e.absolute_path]
    )
    reasons = [_describe(first)] + [_describe(e) for e in rest]
    more = len(reasons) - _MAX_REASONS
    text = "; ".join(reasons[:_MAX_REASONS])
    if more > 0:
        text += f" (and {more} more)"
    raise ValidationError(text)


def decode_json(data: bytes) -> object:
    """Decode UTF-8 JSON bytes; raise DecodeError saying where they are not UTF-8 or not JSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"invalid UTF-8 at byte {exc.start}: {data[exc.start : exc.start + 4]!r}"
        ) from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except _NonStandardNumberError as exc:
        raise DecodeError(f"invalid JSON: {exc} is not a JSON number") from exc
    except RecursionError as exc:
        raise DecodeError("invalid JSON: nested too deeply") from exc


class _NonStandardNumberError(ValueError):
    pass


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise _NonStandardNumberError(name)
