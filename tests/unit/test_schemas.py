"""The JSON Schemas, the pydantic records and the examples agree with each other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as JsonSchemaValidationError

from tickerwire.core.errors import ConfigError, DecodeError, ValidationError
from tickerwire.core.records import (
    ChunkRecord,
    CommitRecord,
    DlqOriginal,
    DlqRecord,
    RawDocument,
    SparseValues,
    VectorRecord,
    parse_record,
)
from tickerwire.core.schema_export import MODELS
from tickerwire.core.schemas import (
    SCHEMA_NAMES,
    decode_json,
    load_schema,
    schema_dir,
    validate,
    validator,
)
from tickerwire.stages.base import InMsg
from tickerwire.stages.preprocess import parse_raw

EXAMPLES = schema_dir() / "examples"
ENUM_FIELDS = ("op", "doc_type", "content_type", "stage")


def _example_schema(path: Path) -> str:
    return next(name for name in SCHEMA_NAMES if path.name.startswith(name + "."))


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


def _model_required(model: type[Any]) -> set[str]:
    return {
        field.alias or name for name, field in model.model_fields.items() if field.is_required()
    }


def _model_properties(model: type[Any]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _model_enum(model: type[Any], prop: str) -> set[str] | None:
    schema = model.model_json_schema()["properties"][prop]
    options = schema.get("anyOf", [schema])
    for option in options:
        if "enum" in option:
            return set(option["enum"])
    return None


# --- the schema files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_is_valid_draft_2020_12_with_id_and_closed_top_level(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://tickerwire.dev/schemas/{name}.json"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["schema"] == {"const": name.replace(".", "/")} | (
        {"description": schema["properties"]["schema"]["description"]}
        if "description" in schema["properties"]["schema"]
        else {}
    )
    assert "schema" in schema["required"]


def test_every_schema_in_topics_yaml_exists() -> None:
    import yaml

    topics = yaml.safe_load((schema_dir() / "topics.yaml").read_text(encoding="utf-8"))
    named = {schema for topic in topics["topics"] for schema in topic["schemas"]}
    assert named == set(SCHEMA_NAMES)


def test_schema_names_work_with_slash_dot_and_json_suffix() -> None:
    assert validator("raw-document/v1") is validator("raw-document.v1")
    assert validator("chunk.v1.json") is validator("chunk.v1")


def test_unknown_schema_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown schema"):
        validator("nope.v1")


# --- models mirror schemas --------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_model_has_the_schema_properties_and_required_set(name: str) -> None:
    schema = load_schema(name)
    model = MODELS[name]
    assert _model_properties(model) == set(schema["properties"])
    # `schema` has a default in the models so code need not repeat it; on the wire it is required.
    assert _model_required(model) | {"schema"} == set(schema["required"])
    # MODELS is the generator's own table: each pairing is checked against the model itself.
    assert model.model_fields["schema_"].default == name.replace(".", "/")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_model_enums_match_the_schema(name: str) -> None:
    schema = load_schema(name)
    for prop in ENUM_FIELDS:
        if prop in schema["properties"]:
            assert _model_enum(MODELS[name], prop) == set(schema["properties"][prop]["enum"]), prop


def test_raw_document_upsert_requirements_match_the_if_then() -> None:
    schema = load_schema("raw-document.v1")
    assert schema["if"]["properties"]["op"] == {"const": "upsert"}
    assert set(schema["then"]["required"]) == set(RawDocument.UPSERT_REQUIRED)


def test_nested_models_match_the_schema() -> None:
    vector = load_schema("vector.v1")["properties"]["sparse"]
    assert _model_properties(SparseValues) == set(vector["properties"])
    assert _model_required(SparseValues) == set(vector["required"])
    original = load_schema("dlq.v1")["properties"]["original"]
    assert _model_properties(DlqOriginal) == set(original["properties"])
    assert _model_required(DlqOriginal) == set(original["required"])
    header = original["properties"]["headers"]["items"]
    header_model = DlqOriginal.model_fields["headers"].annotation
    assert header_model is not None
    (item_model, _) = header_model.__args__
    assert _model_properties(item_model) == set(header["properties"])


def test_vector_fields_are_chunk_fields_without_embed_text_plus_vectors() -> None:
    chunk = set(load_schema("chunk.v1")["properties"])
    vector = set(load_schema("vector.v1")["properties"])
    assert vector == (chunk - {"embed_text"}) | {"dense", "sparse", "model"}


# --- examples ---------------------------------------------------------------------------------


def test_there_is_an_example_for_each_case() -> None:
    names = {path.name for path in _examples()}
    assert {
        "raw-document.v1.upsert-html.json",
        "raw-document.v1.delete.json",
        "chunk.v1.json",
        "commit.v1.upsert.json",
        "vector.v1.json",
        "dlq.v1.json",
    } <= names
    assert {_example_schema(path) for path in _examples()} == set(SCHEMA_NAMES)


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_example_is_valid_and_round_trips_through_its_model(path: Path) -> None:
    name = _example_schema(path)
    obj = json.loads(path.read_text(encoding="utf-8"))
    validate(name, obj)
    record = parse_record(path.read_bytes())
    assert type(record) is MODELS[name]
    data = record.to_bytes()
    assert json.loads(data) == obj
    assert data == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert MODELS[name].from_bytes(data) == record
    validate(name, json.loads(data))


def test_dlq_original_keeps_the_exact_bytes() -> None:
    original = DlqOriginal.from_message(
        topic="tickerwire.docs.raw",
        value=b"\xff\x00not json",
        key=b"doc-1",
        partition=0,
        offset=7,
        timestamp_ms=1,
        headers=[("h", b"\x01"), ("none", None)],
    )
    record = DlqRecord.for_error(
        stage="preprocess", error=DecodeError("invalid UTF-8 at byte 0"), original=original
    )
    back = DlqRecord.from_bytes(record.to_bytes())
    assert back.original.value_bytes() == b"\xff\x00not json"
    assert back.original.key_bytes() == b"doc-1"
    assert back.original.header_list() == [("h", b"\x01"), ("none", None)]
    assert back.error_class == "DecodeError"
    assert back.reason == "invalid UTF-8 at byte 0"
    validate("dlq.v1", json.loads(record.to_bytes()))


def test_vector_from_chunk_copies_every_chunk_field() -> None:
    chunk = ChunkRecord.from_bytes((EXAMPLES / "chunk.v1.json").read_bytes())
    vector = VectorRecord.from_chunk(
        chunk, dense=[0.1, 0.2], sparse=SparseValues(indices=(3,), values=(1.0,)), model="m"
    )
    validate("vector.v1", vector.to_json_dict())
    assert vector.chunk_id == chunk.chunk_id
    assert vector.published_at == chunk.published_at


def test_raw_document_built_in_code_omits_unset_optionals_and_validates() -> None:
    doc = RawDocument(doc_id="x:1", op="delete", version=3)
    assert json.loads(doc.to_bytes()) == {
        "schema": "raw-document/v1",
        "doc_id": "x:1",
        "op": "delete",
        "version": 3,
    }
    assert doc.key == b"x:1"
    validate("raw-document.v1", doc.to_json_dict())


def test_timestamps_serialise_as_rfc3339_with_z_and_milliseconds() -> None:
    obj = _example("commit.v1.upsert.json")
    obj["produced_at"] = "2026-11-27T13:30:02.5+00:00"
    record = CommitRecord.from_bytes(json.dumps(obj).encode())
    assert json.loads(record.to_bytes())["produced_at"] == "2026-11-27T13:30:02.500Z"


# --- invalid records --------------------------------------------------------------------------


def _raw_upsert() -> dict[str, Any]:
    return _example("raw-document.v1.upsert-html.json")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"published_at": "yesterday"}, "$.published_at: 'yesterday' is not a 'date-time'"),
        ({"published_at": "2026-11-27T10:00:00"}, "is not a 'date-time'"),
        ({"doc_id": "has space"}, "$.doc_id: 'has space' does not match"),
        ({"doc_id": ""}, "$.doc_id:"),
        ({"op": "replace"}, "$.op: 'replace' is not one of ['upsert', 'delete']"),
        ({"version": -1}, "$.version: -1 is less than the minimum of 0"),
        ({"version": "7"}, "$.version: '7' is not of type 'integer'"),
        ({"tickers": ["aapl"]}, "$.tickers[0]: 'aapl' does not match"),
        ({"tickers": ["AAPL", "AAPL"]}, "$.tickers: ['AAPL', 'AAPL'] has non-unique elements"),
        ({"url": "not a url"}, "$.url: 'not a url' is not a 'uri'"),
        ({"doc_type": "tweet"}, "$.doc_type: 'tweet' is not one of"),
        ({"surprise": 1}, "Additional properties are not allowed ('surprise' was unexpected)"),
        ({"schema": "raw-document/v2"}, "$.schema: 'raw-document/v1' was expected"),
    ],
)
def test_invalid_raw_documents_are_rejected_with_path_and_message(
    change: dict[str, Any], reason: str
) -> None:
    obj = _raw_upsert() | change
    with pytest.raises(ValidationError) as caught:
        validate("raw-document.v1", obj)
    assert reason in caught.value.reason
    assert caught.value.dead_letter


def test_an_upsert_without_content_is_rejected_but_a_bare_delete_is_valid() -> None:
    bare = {"schema": "raw-document/v1", "doc_id": "a", "op": "upsert", "version": 1}
    with pytest.raises(ValidationError, match="'source' is a required property"):
        validate("raw-document.v1", bare)
    with pytest.raises(ValidationError, match="an upsert needs source"):
        RawDocument.from_bytes(json.dumps(bare).encode())
    validate("raw-document.v1", bare | {"op": "delete"})


def test_many_errors_are_summarised() -> None:
    with pytest.raises(ValidationError, match=r"\(and \d+ more\)"):
        validate("chunk.v1", {"schema": "chunk/v1"})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff{}", "invalid UTF-8 at byte 0"),
        (b'{"a": 1', "invalid JSON at line 1 column 8"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"", "invalid JSON at line 1 column 1"),
    ],
)
def test_decode_json_reports_bad_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_json(data)
    assert reason in caught.value.reason


def test_parse_record_dispatches_on_schema() -> None:
    for path in _examples():
        assert type(parse_record(path.read_bytes())) is MODELS[_example_schema(path)]


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (b"[1]", ValidationError, "$: expected a JSON object, got list"),
        (b'{"schema": "nope/v1"}', ValidationError, "$.schema: 'nope/v1' is not a known"),
        (b'{"doc_id": "a"}', ValidationError, "$.schema: None is not a known"),
        (b"\xc3\x28", DecodeError, "invalid UTF-8"),
    ],
)
def test_parse_record_rejects_unknown_or_bad_input(
    data: bytes, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error) as caught:
        parse_record(data)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("example", "change", "reason"),
    [
        ("commit.v1.upsert.json", {"chunk_ids": ["not-a-uuid"]}, "$.chunk_ids[0]:"),
        ("commit.v1.upsert.json", {"produced_at": "1700000000"}, "$.produced_at:"),
        ("chunk.v1.json", {"content_hash": "ABC"}, "$.content_hash:"),
        ("chunk.v1.json", {"version": "1"}, "$.version:"),
        ("chunk.v1.json", {"url": "nope"}, "$.url:"),
        ("vector.v1.json", {"sparse": {"indices": [1, 2], "values": [1.0]}}, "same length"),
        ("vector.v1.json", {"embed_text": "x"}, "$.embed_text: Extra inputs are not permitted"),
        ("dlq.v1.json", {"attempts": 0}, "$.attempts:"),
        ("raw-document.v1.delete.json", {"tickers": ["A", "A"]}, "tickers must be unique"),
    ],
)
def test_models_are_as_strict_as_the_schemas(
    example: str, change: dict[str, Any], reason: str
) -> None:
    obj = _example(example) | change
    data = json.dumps(obj).encode()
    with pytest.raises(ValidationError) as caught:
        parse_record(data)
    assert reason in caught.value.reason
    name = _example_schema(EXAMPLES / example)
    if change != {"sparse": {"indices": [1, 2], "values": [1.0]}}:
        with pytest.raises(ValidationError):
            validate(name, obj)


def test_records_are_frozen() -> None:
    doc = RawDocument(doc_id="x", op="delete", version=1)
    with pytest.raises(Exception, match="frozen"):
        doc.version = 2  # type: ignore[misc]


# --- the preprocess stage's parse of raw records -----------------------------------------------


def _raw_msg(obj: dict[str, Any] | bytes) -> InMsg:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return InMsg("tickerwire.docs.raw", 0, 0, None, data)


@pytest.mark.parametrize(
    "example", ["raw-document.v1.upsert-html.json", "raw-document.v1.delete.json"]
)
def test_parse_raw_reads_valid_documents_as_the_schema_and_model_do(example: str) -> None:
    obj = _example(example) | {"metadata": {"feed": "x", "score": 1.5, "n": 10**30}}
    doc = parse_raw(_raw_msg(obj), 1 << 20)
    assert doc == RawDocument.model_validate(obj)
    assert doc.model_fields_set == RawDocument.model_validate(obj).model_fields_set


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"published_at": None}, "$.published_at: None is not of type 'string'"),
        ({"title": None}, "$.title: None is not of type 'string'"),
        ({"version": 1.0, "title": None}, "$.title: None is not of type 'string'"),
        ({"published_at": "2026-11-27T10:00:00"}, "is not a 'date-time'"),
        ({"tickers": ["AAPL", "AAPL"]}, "has non-unique elements"),
        ({"surprise": 1}, "('surprise' was unexpected)"),
    ],
)
def test_parse_raw_rejects_what_the_schema_rejects_with_its_reason(
    change: dict[str, Any], reason: str
) -> None:
    obj = _example("raw-document.v1.delete.json") | {"title": "t"} | change
    with pytest.raises(ValidationError) as caught:
        parse_raw(_raw_msg(obj), 1 << 20)
    assert reason in caught.value.reason


def test_parse_raw_rejects_non_standard_numbers_anywhere() -> None:
    data = json.dumps(_example("raw-document.v1.delete.json")).encode()
    data = data[:-1] + b', "metadata": {"x": NaN}}'
    with pytest.raises(DecodeError, match="NaN is not a JSON number"):
        parse_raw(_raw_msg(data), 1 << 20)


def test_parse_raw_accepts_an_integral_float_version_as_the_schema_does() -> None:
    obj = _example("raw-document.v1.delete.json") | {"version": 3.0}
    assert parse_raw(_raw_msg(obj), 1 << 20).version == 3


@pytest.mark.parametrize(
    ("period", "year"),
    [("FY2018", 2018), ("2023Q2", 2023), ("Q3 FY2027", 2027), ("FY18", None), ("12345", None)],
)
def test_fiscal_year_is_the_year_the_period_names(period: str, year: int | None) -> None:
    from tickerwire.core.records import fiscal_year_of

    assert fiscal_year_of(period) == year


def test_chunk_facts_round_trip_and_agree_with_the_schema() -> None:
    obj = _example("chunk.v1.json") | {
        "facts": {"company": "Acme", "fiscal_period": "FY2026", "fiscal_year": 2026}
    }
    validate("chunk.v1", obj)
    record = ChunkRecord.from_bytes(json.dumps(obj).encode())
    assert record.facts is not None and record.facts.fiscal_year == 2026
    assert json.loads(record.to_bytes()) == obj
    vector = VectorRecord.from_chunk(
        record, dense=[1.0], sparse=SparseValues(indices=(), values=()), model="m"
    )
    assert vector.facts == record.facts
    bad = obj | {"facts": {"price": "1"}}
    with pytest.raises(JsonSchemaValidationError):
        validator("chunk.v1").validate(bad)
    with pytest.raises(ValidationError, match=r"\$\.facts\.price"):
        ChunkRecord.from_bytes(json.dumps(bad).encode())


# --- the schema files are generated from the models ---------------------------------------------


def test_committed_schema_files_are_what_the_models_generate(tmp_path: Path) -> None:
    from tickerwire.core.schema_export import check, write

    assert check() == []
    write(tmp_path)
    (tmp_path / "chunk.v1.json").write_text("{}\n", encoding="utf-8")
    assert check(tmp_path) == ["chunk.v1"]


def test_schemas_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tickerwire.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["schemas", "generate", "--dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path)]).exit_code == 0
    (tmp_path / "dlq.v1.json").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1


_RAW_UPSERT = "raw-document.v1.upsert-html.json"
_MARKET = {"doc_type": "market_stats"}

#: (example, change, valid?): samples on both sides of each rule.
AGREEMENT: list[tuple[str, dict[str, Any], bool]] = [
    (_RAW_UPSERT, {}, True),
    (_RAW_UPSERT, {"title": None}, False),
    (_RAW_UPSERT, {"url": None}, True),
    (_RAW_UPSERT, {"body": 3}, False),
    (_RAW_UPSERT, {"tickers": ["AAPL", "AAPL"]}, False),
    (_RAW_UPSERT, {"tickers": ["aapl"]}, False),
    (_RAW_UPSERT, {"language": "english"}, False),
    (_RAW_UPSERT, {"published_at": "2026-11-27T10:00:00"}, False),
    (_RAW_UPSERT, {"doc_type": "memo"}, False),
    (_RAW_UPSERT, {"metadata": {"company": "Acme", "fiscal_period": "FY2026"}}, True),
    (_RAW_UPSERT, {"metadata": {"company": 7}}, False),
    (_RAW_UPSERT, {"metadata": {"fiscal_period": ""}}, False),
    (_RAW_UPSERT, {"metadata": {"company": None}}, True),
    (_RAW_UPSERT, _MARKET | {"metadata": {"price": 1.5, "volume": 10}}, True),
    (_RAW_UPSERT, _MARKET | {"metadata": {"price": "1.5"}}, False),
    (_RAW_UPSERT, _MARKET | {"metadata": {"change": True}}, False),
    (_RAW_UPSERT, _MARKET | {"metadata": {"volume": -1}}, False),
    (_RAW_UPSERT, {"metadata": {"price": "n/a"}}, True),
    ("raw-document.v1.delete.json", {}, True),
    ("raw-document.v1.delete.json", {"source": None}, False),
    ("raw-document.v1.delete.json", {"op": "move"}, False),
    ("chunk.v1.json", {"facts": {"company": "Acme", "fiscal_year": 2026}}, True),
    ("chunk.v1.json", {"facts": {"price": "1"}}, False),
    ("chunk.v1.json", {"facts": {"volume": -1.0}}, False),
    ("chunk.v1.json", {"facts": {"other": 1}}, False),
    ("chunk.v1.json", {"url": None}, True),
    ("vector.v1.json", {"facts": {"change_pct": -2.5}}, True),
    ("vector.v1.json", {"dense": []}, False),
    ("commit.v1.upsert.json", {"chunk_ids": []}, True),
    ("commit.v1.upsert.json", {"content_hash": None}, True),
    ("commit.v1.upsert.json", {"version": -1}, False),
    ("dlq.v1.json", {"doc_id": None}, True),
    ("dlq.v1.json", {"stage": "nowhere"}, False),
]


@pytest.mark.parametrize(("example", "change", "valid"), AGREEMENT)
def test_schema_and_model_agree_on_valid_and_invalid_samples(
    example: str, change: dict[str, Any], valid: bool
) -> None:
    name = _example_schema(EXAMPLES / example)
    obj = _example(example) | change
    schema_ok = not list(validator(name).iter_errors(obj))
    try:
        MODELS[name].model_validate_json(json.dumps(obj), strict=True)
        model_ok = True
    except pydantic.ValidationError:
        model_ok = False
    assert (schema_ok, model_ok) == (valid, valid)
