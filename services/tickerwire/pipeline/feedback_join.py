"""The join of feedback to queries, as pure decisions (the faust glue is stages/feedback.py).

A join entry holds what has been seen of one ``query_id``: the query record, the latest feedback
record, or both, and when it was last touched. Either half may come first (the log is
asynchronous and the two topics are read independently). :func:`verdict` decides what a query is
worth as an example:

- approved: rated up, grounded, at least one citation, none dropped as invalid and none marked
  wrong;
- failure: refused (with or without a rating), rated down, or rated up with a citation marked
  wrong or dropped;
- nothing: a search (no answer), or an answer that nobody rated and that was not refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tickerwire.core.records import ExampleRecord, FeedbackRecord, QueryLogRecord
from tickerwire.core.records._learning import ExampleKind, ExampleReason


@dataclass(frozen=True, slots=True)
class JoinEntry:
    """What the join has seen of one query id; ``touched`` is a POSIX time in seconds."""

    query: QueryLogRecord | None
    feedback: FeedbackRecord | None
    touched: float

    def to_bytes(self) -> bytes:
        """The entry as the join table stores it."""
        data: dict[str, Any] = {
            "query": self.query.to_json_dict() if self.query else None,
            "feedback": self.feedback.to_json_dict() if self.feedback else None,
            "touched": self.touched,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> JoinEntry:
        """An entry written by :meth:`to_bytes`."""
        obj = json.loads(data)
        query, feedback = obj.get("query"), obj.get("feedback")
        return cls(
            query=QueryLogRecord.from_bytes(json.dumps(query).encode()) if query else None,
            feedback=FeedbackRecord.from_bytes(json.dumps(feedback).encode()) if feedback else None,
            touched=float(obj["touched"]),
        )


def verdict(
    query: QueryLogRecord, feedback: FeedbackRecord | None
) -> tuple[ExampleKind, ExampleReason] | None:
    """What ``query`` (with its latest ``feedback``) is as an example, or None."""
    if query.endpoint != "ask" or query.answer is None:
        return None
    if query.grounded is False:
        return "failure", "refused"
    if feedback is None:
        return None
    if feedback.rating < 0:
        return "failure", "rated_down"
    cited = {c.n for c in query.citations}
    if feedback.wrong_citations:
        return "failure", "citation_marked_wrong"
    if query.citations_dropped or not cited:
        return "failure", "citation_dropped"
    return "approved", "rated_up"


@dataclass(frozen=True, slots=True)
class JoinStep:
    """The entry to store after one record, and the example to write (None: nothing new)."""

    entry: JoinEntry
    example: ExampleRecord | None


def join(entry: JoinEntry | None, record: QueryLogRecord | FeedbackRecord, now: float) -> JoinStep:
    """Fold ``record`` into ``entry`` (None: nothing seen yet) and say what to write.

    A later feedback record replaces an earlier one (the latest rating wins, and the compacted
    examples topic keeps only the latest example of a query).
    """
    query = entry.query if entry else None
    feedback = entry.feedback if entry else None
    if isinstance(record, QueryLogRecord):
        query = record
    else:
        feedback = record
    new = JoinEntry(query=query, feedback=feedback, touched=now)
    if query is None:
        return JoinStep(new, None)
    decided = verdict(query, feedback)
    if decided is None:
        return JoinStep(new, None)
    kind, reason = decided
    example = ExampleRecord(
        query_id=query.query_id,
        kind=kind,
        reason=reason,
        joined_at=datetime.fromtimestamp(now, UTC),
        query=query,
        feedback=feedback,
    )
    return JoinStep(new, example)


def expired(entry: JoinEntry, now: float, retention_s: float) -> bool:
    """True when ``entry`` has waited longer than the retention since it was last touched."""
    return now - entry.touched > retention_s
