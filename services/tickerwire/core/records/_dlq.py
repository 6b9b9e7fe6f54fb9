"""The dead-letter record: which stage gave up on a record, why, and its original bytes."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from tickerwire.core.records._base import RecordBase, Stage, Timestamp


class DlqHeader(RecordBase):
    """One Kafka header of the original record; the value is base64 (or null)."""

    key: str
    value_b64: str | None


class DlqOriginal(RecordBase):
    """Where the dead-lettered record came from, with its exact bytes (base64)."""

    topic: Annotated[str, StringConstraints(min_length=1)]
    partition: Annotated[int, Field(ge=0)] | None
    offset: Annotated[int, Field(ge=0)] | None
    timestamp_ms: int | None
    key_b64: str | None
    value_b64: str
    headers: tuple[DlqHeader, ...]

    @classmethod
    def from_message(
        cls,
        *,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        offset: int | None = None,
        timestamp_ms: int | None = None,
        headers: Iterable[tuple[str, bytes | None]] = (),
    ) -> DlqOriginal:
        """Capture a Kafka message's coordinates and bytes."""
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            key_b64=_b64(key) if key is not None else None,
            value_b64=_b64(value),
            headers=tuple(
                DlqHeader(key=k, value_b64=_b64(v) if v is not None else None) for k, v in headers
            ),
        )

    def key_bytes(self) -> bytes | None:
        """The original key bytes."""
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    def value_bytes(self) -> bytes:
        """The original value bytes."""
        return base64.b64decode(self.value_b64)

    def header_list(self) -> list[tuple[str, bytes | None]]:
        """The original headers, as aiokafka takes them."""
        return [
            (h.key, base64.b64decode(h.value_b64) if h.value_b64 is not None else None)
            for h in self.headers
        ]


class DlqRecord(RecordBase):
    """A dead-lettered record on tickerwire.docs.dlq (key = doc_id when known): which stage gave
    up, why, and the original bytes so it can be replayed once fixed."""

    SCHEMA_NAME: ClassVar[str] = "dlq.v1"

    schema_: Literal["dlq/v1"] = Field(default="dlq/v1", alias="schema")
    stage: Stage
    error_class: Annotated[str, StringConstraints(min_length=1)]
    reason: str
    attempts: Annotated[int, Field(ge=1)]
    failed_at: Timestamp
    doc_id: str | None
    original: DlqOriginal

    @classmethod
    def for_error(
        cls,
        *,
        stage: Stage,
        error: BaseException,
        original: DlqOriginal,
        doc_id: str | None = None,
        attempts: int = 1,
        failed_at: datetime | None = None,
    ) -> DlqRecord:
        """A DLQ record for ``error``; uses ``error_class``/``reason`` when it is ours."""
        error_class = getattr(error, "error_class", type(error).__name__)
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        return cls(
            stage=stage,
            error_class=str(error_class),
            reason=str(reason),
            attempts=attempts,
            failed_at=failed_at or datetime.now(UTC),
            doc_id=doc_id,
            original=original,
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
