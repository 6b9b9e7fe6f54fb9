"""``entity/v1``: a name -> ticker observation on the compacted ``tickerwire.entities`` topic."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from tickerwire.core.records._base import DocId, RecordBase, Ticker, Timestamp


class EntityRecord(RecordBase):
    """One document's evidence that a company name stands for a ticker (a null name: the ticker
    exists), on the compacted tickerwire.entities topic (key = TICKER or TICKER:normalised-name).
    The query service folds the topic into the registry it understands questions with."""

    SCHEMA_NAME: ClassVar[str] = "entity.v1"

    schema_: Literal["entity/v1"] = Field(default="entity/v1", alias="schema")
    ticker: Ticker
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None
    doc_id: DocId
    observed_at: Timestamp
