"""Property tests (hypothesis) over everything a document goes through before it is embedded:
the raw-document schema and models, the readers of every input format, the cleaners, the
redactor and the chunker.

- No exception escapes but the documented refusal (a PermanentError: ValidationError or
  TooLargeError, which the producer reports and the stages dead-letter).
- The chunks cover the cleaned text: every word of it is in some chunk, in order.
- Chunk ids are stable: the same document chunks to the same ids.
- Redaction is idempotent.

Examples per property: ``TICKERWIRE_FUZZ_EXAMPLES`` (default 100, for CI).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.chunk_support import chunk_words
from tickerwire.core.errors import PermanentError
from tickerwire.core.records import parse_raw_document, raw_document_from
from tickerwire.pipeline.clean import clean_document
from tickerwire.pipeline.redact import redact
from tickerwire.produce.readers import Accepted, Rejection, read_paths

EXAMPLES = int(os.environ.get("TICKERWIRE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
VALID = {
    "schema": "raw-document/v1",
    "doc_id": "news:1",
    "op": "upsert",
    "version": 1,
    "source": "wire",
    "doc_type": "news",
    "title": "Acme beats",
    "body": "Acme reported revenue of $12.5 million.",
    "content_type": "text/plain",
    "published_at": "2026-11-27T10:00:00Z",
    "tickers": ["ACME"],
}
#: A valid document with one field replaced or dropped, so the fuzz reaches deep validation.
MUTATED = st.builds(
    lambda key, value, drop: {k: v for k, v in (VALID | {key: value}).items() if k != drop},
    st.sampled_from([*sorted(VALID), "metadata", "url", "language", "extra"]),
    JSON,
    st.sampled_from([None, *sorted(VALID)]),
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=600) | st.lists(
    st.sampled_from(
        [
            "Revenue",
            "rose",
            "12%",
            "to",
            "$1,234",
            "million.",
            "\n\n",
            "Item 7.",
            "| a | b |",
            "<b>",
            "</p>",
            "&amp;",
            "jane@example.com",
            "(212) 555-0100",
            "4111 1111 1111 1111",
        ]
    ),
    max_size=120,
).map(" ".join)


@FUZZ
@given(obj=JSON | MUTATED)
def test_the_raw_document_model_accepts_or_refuses_clearly(obj: Any) -> None:
    for parse in (
        lambda: raw_document_from(obj),
        lambda: parse_raw_document(json.dumps(obj).encode()),
    ):
        try:
            doc = parse()
        except PermanentError as exc:
            assert str(exc)
        else:
            assert doc.doc_id and doc.version >= 0


@FUZZ
@given(data=st.binary(max_size=300))
def test_raw_bytes_are_parsed_or_refused_clearly(data: bytes) -> None:
    try:
        parse_raw_document(data)
    except PermanentError as exc:
        assert str(exc)


@FUZZ
@given(
    suffix=st.sampled_from([".jsonl", ".csv", ".rss", ".xml", ".html"]),
    content=st.binary(max_size=400)
    | TEXT.map(str.encode)
    | st.lists(JSON | MUTATED, max_size=3).map(
        lambda rows: "\n".join(json.dumps(r) for r in rows).encode()
    ),
)
def test_readers_turn_any_file_into_documents_or_reasons(suffix: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        for item in read_paths([path], max_body_bytes=10_000):
            assert isinstance(item, Accepted | Rejection)
            if isinstance(item, Rejection):
                assert item.reason


@FUZZ
@given(body=TEXT, content_type=st.sampled_from(["text/plain", "text/html", "text/markdown"]))
def test_cleaning_never_fails(body: str, content_type: Any) -> None:
    cleaned = clean_document(body, content_type)
    assert isinstance(cleaned, str)


@FUZZ
@given(text=TEXT)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text).text
    assert redact(once).text == once


@FUZZ
@given(text=TEXT, max_tokens=st.integers(16, 80), header=st.sampled_from([None, "", "Acme | 10-K"]))
def test_chunks_cover_the_text_and_their_ids_are_stable(
    text: str, max_tokens: int, header: str | None
) -> None:
    def chunk() -> list[Any]:
        return chunk_words(
            doc_id="doc:1", title="A title", text=text, max_tokens=max_tokens, header=header
        )

    chunks = chunk()
    assert [c.chunk_id for c in chunk()] == [c.chunk_id for c in chunks]
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    covered = " ".join(c.text for c in chunks).split()
    position = 0
    for word in text.split():  # every word, in order (a repeated chunk is kept once)
        if word in covered[position:]:
            position = covered.index(word, position) + 1
        else:
            assert word in covered, (word, text)
