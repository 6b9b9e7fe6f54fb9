"""What the learning loop's examples topic becomes: a regression set and a knowledge-gaps report.

- :func:`export_evalset` turns approved answers into a ``tickerwire eval`` dataset: the question,
  the cited documents as the relevant ids, and a corpus of those documents (plus the others the
  questions retrieved, as distractors) read back from the index.
- :func:`gaps` groups the questions that were refused or rated down by similarity, most frequent
  first: what users ask that the index does not answer.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from tickerwire.core.errors import PermanentError
from tickerwire.core.ports import Embedder
from tickerwire.core.records import ExampleRecord

log = structlog.get_logger("tickerwire.evaluation.learning")

#: A document as the index gives it back (``GET /v1/documents/{id}``), or None when it is gone.
FetchDocument = Callable[[str], Awaitable[dict[str, Any] | None]]


def latest_examples(values: Iterable[bytes]) -> list[ExampleRecord]:
    """The latest example of each query id, in topic order (a compacted topic may still hold
    older ones); unreadable records are logged and skipped."""
    latest: dict[str, ExampleRecord] = {}
    for value in values:
        try:
            example = ExampleRecord.from_bytes(value)
        except PermanentError as exc:
            log.warning("example_unreadable", reason=exc.reason)
            continue
        latest.pop(example.query_id, None)
        latest[example.query_id] = example
    return list(latest.values())


def corpus_row(doc: dict[str, Any]) -> dict[str, Any]:
    """An eval corpus row from a document of the index: its chunks' text in chunk order."""
    chunks = sorted(doc.get("chunks") or [], key=lambda c: c.get("chunk_index") or 0)
    row: dict[str, Any] = {
        "id": doc["doc_id"],
        "title": doc.get("title") or "",
        "text": "\n\n".join(str(c.get("text") or "") for c in chunks),
        "tickers": list(doc.get("tickers") or []),
    }
    for key in ("doc_type", "published_at"):
        if doc.get(key):
            row[key] = doc[key]
    return row


@dataclass
class EvalsetSummary:
    """What ``export evalset`` wrote."""

    questions: int = 0
    documents: int = 0
    missing_documents: list[str] = field(default_factory=list)


async def export_evalset(
    examples: Sequence[ExampleRecord], output: Path, fetch: FetchDocument
) -> EvalsetSummary:
    """Write ``corpus.jsonl`` and ``questions.jsonl`` (the format of ``tickerwire eval``).

    Each approved question (once per distinct text) is a question whose relevant ids are the
    documents its answer cited; a question whose cited documents are all gone from the index
    is left out.
    """
    approved = [e for e in examples if e.kind == "approved" and e.query.citations]
    wanted: dict[str, None] = {}
    for e in approved:
        for doc_id in [c.doc_id for c in e.query.citations] + [h.doc_id for h in e.query.hits]:
            wanted.setdefault(doc_id)
    summary = EvalsetSummary()
    corpus: dict[str, dict[str, Any]] = {}
    for doc_id in wanted:
        doc = await fetch(doc_id)
        if doc is None:
            summary.missing_documents.append(doc_id)
            continue
        corpus[doc_id] = corpus_row(doc)
    questions: list[dict[str, Any]] = []
    asked: set[str] = set()
    for e in approved:
        relevant = sorted({c.doc_id for c in e.query.citations} & corpus.keys())
        text = e.query.question.strip()
        if not relevant or text.lower() in asked:
            continue
        asked.add(text.lower())
        questions.append({"id": e.query_id, "question": text, "relevant_ids": relevant})
    _write_jsonl(output / "corpus.jsonl", list(corpus.values()))
    _write_jsonl(output / "questions.jsonl", questions)
    summary.questions, summary.documents = len(questions), len(corpus)
    return summary


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


@dataclass
class GapGroup:
    """Similar questions that were refused or rated down."""

    questions: list[str]
    refused: int = 0
    rated_down: int = 0

    @property
    def count(self) -> int:
        """How many times these questions failed."""
        return len(self.questions)

    def to_json(self) -> dict[str, Any]:
        """The group as ``report gaps --json`` prints it."""
        distinct = list(dict.fromkeys(self.questions))
        return {
            "count": self.count,
            "refused": self.refused,
            "rated_down": self.rated_down,
            "question": distinct[0],
            "similar": distinct[1:],
        }


def is_gap(example: ExampleRecord) -> bool:
    """A refusal, or an answer rated down."""
    rated_down = example.feedback is not None and example.feedback.rating < 0
    return example.kind == "failure" and (example.reason == "refused" or rated_down)


async def gaps(
    examples: Sequence[ExampleRecord], embedder: Embedder, *, threshold: float = 0.75
) -> list[GapGroup]:
    """Refused or rated-down questions, grouped: a question joins the first group whose first
    question it resembles (cosine of the embeddings >= ``threshold``); largest groups first."""
    failed = [e for e in examples if is_gap(e)]
    if not failed:
        return []
    vectors = np.asarray(
        await embedder.embed_documents([e.query.question for e in failed]), dtype=np.float64
    )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1.0, norms)
    groups: list[GapGroup] = []
    heads: list[int] = []
    for i, e in enumerate(failed):
        sims = [float(vectors[i] @ vectors[h]) for h in heads]
        best = int(np.argmax(sims)) if sims else -1
        if best < 0 or sims[best] < threshold:
            groups.append(GapGroup(questions=[]))
            heads.append(i)
            best = len(groups) - 1
        group = groups[best]
        group.questions.append(e.query.question)
        if e.reason == "refused":
            group.refused += 1
        if e.feedback is not None and e.feedback.rating < 0:
            group.rated_down += 1
    return sorted(groups, key=lambda g: -g.count)
