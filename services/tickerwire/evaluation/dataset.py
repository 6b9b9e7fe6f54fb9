"""Evaluation datasets: reading ``corpus.jsonl``/``questions.jsonl``, and corpus rows as documents.

A corpus row is ``id``, ``title`` and ``text``, and may carry what a producer sends with a document:
``tickers``, ``company``, ``doc_type``, ``published_at`` and ``metadata``. :func:`corpus_documents`
turns each row into the raw-document/v1 record a producer would send, checked by the producer's own
check, so filters and query understanding see in evaluation what they see in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from tickerwire.core.errors import ConfigError, PermanentError
from tickerwire.core.records import DocType

#: Publication time of a row that names none (the questions do not depend on it).
EVAL_PUBLISHED_AT = "2020-01-01T00:00:00Z"
#: doc_type of a row that names none, or one that raw-document/v1 does not know.
DEFAULT_DOC_TYPE = "filing"
_DOC_TYPES: frozenset[str] = frozenset(get_args(DocType))
#: No body limit unless the caller passes the producer's (the producer checks it again on send).
_NO_LIMIT = 1 << 62


@dataclass(frozen=True, slots=True)
class Question:
    """One question and the ids of the passages that answer it."""

    id: str
    text: str
    relevant: frozenset[str]


@dataclass
class Dataset:
    """A corpus of passages and the questions asked of it."""

    corpus: list[dict[str, Any]]
    questions: list[Question]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{lineno}: expected a JSON object")
        rows.append(row)
    return rows


def load_dataset(directory: Path, *, limit: int | None = None) -> Dataset:
    """Read ``corpus.jsonl`` and ``questions.jsonl``; ConfigError says what is missing or bad.

    Questions without relevant ids are skipped; ``limit`` keeps the first ``limit`` questions.
    """
    corpus_path, questions_path = directory / "corpus.jsonl", directory / "questions.jsonl"
    for path in (corpus_path, questions_path):
        if not path.is_file():
            raise ConfigError(
                f"{path} is missing: a dataset needs corpus.jsonl and questions.jsonl"
            )
    corpus = _read_jsonl(corpus_path)
    for n, row in enumerate(corpus, start=1):
        missing = [key for key in ("id", "text") if key not in row]
        if missing:
            raise ConfigError(f"{corpus_path}: row {n} has no {' or '.join(missing)}")
    questions = [
        Question(str(q["id"]), str(q["question"]), frozenset(map(str, q["relevant_ids"])))
        for q in _read_jsonl(questions_path)
        if q.get("relevant_ids")
    ]
    if limit is not None:
        questions = questions[:limit]
    return Dataset(corpus=corpus, questions=questions)


def corpus_document(row: dict[str, Any], *, titles: bool) -> dict[str, Any]:
    """The raw-document/v1 record of one corpus row (one document per row), not yet checked.

    ``company`` goes to ``metadata.company`` unless the row's metadata already names one. A
    ``doc_type`` that raw-document/v1 does not know (TAT-QA's ``annual_report_table``) is kept as
    ``metadata.dataset_doc_type`` and the document is a ``filing``.
    """
    raw_metadata = row.get("metadata")
    if raw_metadata is not None and not isinstance(raw_metadata, dict):
        raise ConfigError(
            f"corpus row {row.get('id')!r}: metadata must be an object, "
            f"got {type(raw_metadata).__name__}"
        )
    metadata: dict[str, Any] = dict(raw_metadata or {})
    company = row.get("company")
    if company is not None:
        metadata.setdefault("company", company)
    doc_type = row.get("doc_type")
    if doc_type is not None and doc_type not in _DOC_TYPES:
        metadata.setdefault("dataset_doc_type", doc_type)
        doc_type = None
    return {
        "schema": "raw-document/v1",
        "doc_id": str(row["id"]),
        "op": "upsert",
        "version": 1,
        "source": "eval",
        "doc_type": doc_type or DEFAULT_DOC_TYPE,
        "title": str(row.get("title", "")) if titles else "",
        "body": str(row["text"]),
        "content_type": "text/plain",
        "published_at": row.get("published_at") or EVAL_PUBLISHED_AT,
        "tickers": row.get("tickers") or [],
        "metadata": metadata,
    }


def corpus_documents(
    corpus: Iterable[dict[str, Any]], *, titles: bool, max_body_bytes: int | None = None
) -> list[dict[str, Any]]:
    """raw-document/v1 records for the corpus rows, each passed by the producer's check.

    A row the producer would refuse is a ConfigError naming the row and the reason, raised before
    anything is sent.
    """
    from tickerwire.produce.readers import check_document

    limit = _NO_LIMIT if max_body_bytes is None else max_body_bytes
    docs: list[dict[str, Any]] = []
    for n, row in enumerate(corpus, start=1):
        doc = corpus_document(row, titles=titles)
        try:
            check_document(doc, max_body_bytes=limit)
        except PermanentError as exc:
            raise ConfigError(f"corpus row {n} ({doc['doc_id']}): {exc.reason}") from None
        docs.append(doc)
    return docs
