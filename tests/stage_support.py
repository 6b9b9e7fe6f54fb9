"""Doubles shared by the stage tests: a recording sender and chunk records as consumed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from tickerwire.core.records import ChunkRecord, DlqRecord
from tickerwire.core.topics import CHUNKS_TOPIC, DLQ_TOPIC
from tickerwire.stages.base import CollectingSender, InMsg


class ListSender(CollectingSender):
    """Records every message it is asked to send."""

    def dead(self) -> list[DlqRecord]:
        return [DlqRecord.from_bytes(m.value) for m in self.sent if m.topic == DLQ_TOPIC]


def chunk_record(doc_id: str, text: str, **changes: Any) -> ChunkRecord:
    """The first chunk of version 1 of ``doc_id``, embedding ``text``, with ``changes``."""
    fields: dict[str, Any] = {
        "doc_id": doc_id,
        "version": 1,
        "chunk_id": uuid4(),
        "chunk_index": 0,
        "text": text,
        "embed_text": text,
        "content_hash": "0" * 64,
        "token_count": 5,
        "title": "",
        "url": None,
        "source": "test",
        "doc_type": "news",
        "tickers": (),
        "published_at": datetime(2026, 1, 1, tzinfo=UTC),
        "language": "en",
        "produced_at": datetime.now(UTC),
    }
    return ChunkRecord(**(fields | changes))


def chunk_msg(i: int, text: str) -> InMsg:
    """Chunk record ``i`` of document ``d<i>`` at offset ``i`` of the chunks topic."""
    rec = chunk_record(f"d{i}", text)
    return InMsg(CHUNKS_TOPIC, 0, i, f"d{i}".encode(), rec.to_bytes())
