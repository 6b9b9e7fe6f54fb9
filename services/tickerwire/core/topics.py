"""The one definition of tickerwire's topic names and stage names.

``schemas/topics.yaml`` describes the same topics (partitions, retention, schemas); a test checks
that it names exactly :data:`ALL_TOPICS`.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

RAW_TOPIC: Final = "tickerwire.docs.raw"
CHUNKS_TOPIC: Final = "tickerwire.docs.chunks"
VECTORS_TOPIC: Final = "tickerwire.docs.vectors"
DLQ_TOPIC: Final = "tickerwire.docs.dlq"
#: Names and tickers learned from the documents (compacted; docs/query-understanding.md).
ENTITIES_TOPIC: Final = "tickerwire.entities"
#: The learning loop (README, "Learning loop"): every search and answer, key query_id.
QUERIES_TOPIC: Final = "tickerwire.queries"
#: Ratings of answers, key query_id.
FEEDBACK_TOPIC: Final = "tickerwire.feedback"
#: Approved answers and failures, joined from queries and feedback (compacted, key query_id).
EXAMPLES_TOPIC: Final = "tickerwire.examples"
ALL_TOPICS: Final = (
    RAW_TOPIC,
    CHUNKS_TOPIC,
    VECTORS_TOPIC,
    DLQ_TOPIC,
    ENTITIES_TOPIC,
    QUERIES_TOPIC,
    FEEDBACK_TOPIC,
    EXAMPLES_TOPIC,
)

#: A stream stage of the worker.
StageName: TypeAlias = Literal["preprocess", "embed", "index"]
#: Whatever may dead-letter a record: the producer or a stage.
Stage: TypeAlias = Literal["produce", StageName]

ALL_STAGES: Final[tuple[StageName, ...]] = ("preprocess", "embed", "index")
#: The join of feedback to queries (stages/feedback.py): not a stream stage (no DLQ, no
#: sequencer), but selected like one (``tickerwire worker feedback``; ``tickerwire up`` runs it).
JoinStageName: TypeAlias = Literal["feedback"]
FEEDBACK_STAGE: Final[JoinStageName] = "feedback"
#: Whatever a worker may run.
WorkerStage: TypeAlias = StageName | JoinStageName
#: The topic each stage consumes.
STAGE_INPUT: Final[dict[StageName, str]] = {
    "preprocess": RAW_TOPIC,
    "embed": CHUNKS_TOPIC,
    "index": VECTORS_TOPIC,
}
