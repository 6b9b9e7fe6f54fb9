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
ALL_TOPICS: Final = (RAW_TOPIC, CHUNKS_TOPIC, VECTORS_TOPIC, DLQ_TOPIC, ENTITIES_TOPIC)

#: A stream stage of the worker.
StageName: TypeAlias = Literal["preprocess", "embed", "index"]
#: Whatever may dead-letter a record: the producer or a stage.
Stage: TypeAlias = Literal["produce", StageName]

ALL_STAGES: Final[tuple[StageName, ...]] = ("preprocess", "embed", "index")
#: The topic each stage consumes.
STAGE_INPUT: Final[dict[StageName, str]] = {
    "preprocess": RAW_TOPIC,
    "embed": CHUNKS_TOPIC,
    "index": VECTORS_TOPIC,
}
