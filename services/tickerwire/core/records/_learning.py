"""The learning loop's records: ``query-log/v1``, ``feedback/v1`` and ``example/v1``.

All three are keyed by ``query_id`` (README, "Learning loop"). The question and any comment are
redacted by the document PII redactor before they are built; the API key is never in them, only
a keyed hash of it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import Field, StringConstraints

from tickerwire.core.records._base import DocId, RecordBase, Timestamp

QUERY_ID_PATTERN = r"^[0-9a-f]{32}$"
QueryId = Annotated[str, StringConstraints(pattern=QUERY_ID_PATTERN)]
_Text = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
_Short = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Endpoint: TypeAlias = Literal["search", "ask"]
Rating: TypeAlias = Literal[1, -1]
ExampleKind: TypeAlias = Literal["approved", "failure"]
ExampleReason: TypeAlias = Literal[
    "rated_up", "rated_down", "refused", "citation_marked_wrong", "citation_dropped"
]
CitationNumber = Annotated[int, Field(ge=1, le=100)]


class LoggedHit(RecordBase):
    """One retrieved chunk: its ids and score."""

    doc_id: DocId
    chunk_id: _Short
    score: float


class LoggedPassage(RecordBase):
    """One numbered passage the answer model read (the context of the answer)."""

    n: CitationNumber
    doc_id: DocId
    chunk_id: _Short
    title: str
    published_at: str | None
    text: str


class LoggedCitation(RecordBase):
    """A citation of the answer: the passage number and what it points at."""

    n: CitationNumber
    doc_id: DocId
    chunk_id: _Short


class QueryLogRecord(RecordBase):
    """One /v1/search or /v1/ask call on tickerwire.queries (key = query_id): the redacted question,
    filters and what query understanding applied, hits, the answer and its citations (ask), timings,
    the index watermark, and a keyed hash of the caller's API key (never the key)."""

    SCHEMA_NAME: ClassVar[str] = "query-log.v1"

    schema_: Literal["query-log/v1"] = Field(default="query-log/v1", alias="schema")
    query_id: QueryId
    endpoint: Endpoint
    asked_at: Timestamp
    question: _Text
    #: How many PII spans of each kind the redactor replaced in the question.
    redactions: dict[str, int] = Field(default_factory=dict)
    mode: Literal["hybrid", "dense", "sparse"]
    k: Annotated[int, Field(ge=1, le=100)]
    filters: dict[str, Any] = Field(default_factory=dict)
    understood: dict[str, Any] | None = None
    hits: tuple[LoggedHit, ...] = ()
    context: tuple[LoggedPassage, ...] = ()
    answer: str | None = None
    grounded: bool | None = None
    refusal_reason: str | None = None
    citations: tuple[LoggedCitation, ...] = ()
    citations_dropped: Annotated[int, Field(ge=0)] = 0
    model: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    watermark: dict[str, str | None] = Field(default_factory=dict)
    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")] | None = None


class FeedbackRecord(RecordBase):
    """A rating of one answer on tickerwire.feedback (key = query_id): +1 or -1, an optional
    (redacted) comment, an optional corrected answer, and the citation numbers marked wrong."""

    SCHEMA_NAME: ClassVar[str] = "feedback.v1"

    schema_: Literal["feedback/v1"] = Field(default="feedback/v1", alias="schema")
    query_id: QueryId
    rating: Rating
    given_at: Timestamp
    comment: Annotated[str, StringConstraints(max_length=4000)] | None = None
    corrected_answer: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    wrong_citations: tuple[CitationNumber, ...] = ()
    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")] | None = None


class ExampleRecord(RecordBase):
    """A query joined with its feedback on the compacted tickerwire.examples topic (key =
    query_id): an approved example (rated up, grounded, every citation valid and none marked
    wrong) or a failure (rated down, refused, or a citation marked wrong or dropped)."""

    SCHEMA_NAME: ClassVar[str] = "example.v1"

    schema_: Literal["example/v1"] = Field(default="example/v1", alias="schema")
    query_id: QueryId
    kind: ExampleKind = Field(description="approved, or failure")
    reason: ExampleReason = Field(
        description="rated_up (approved); refused, rated_down, citation_marked_wrong or "
        "citation_dropped (failures)"
    )
    joined_at: Timestamp
    #: The query as logged, and its latest feedback (none for a refusal nobody rated).
    query: QueryLogRecord
    feedback: FeedbackRecord | None = None
