"""The embed stage on the OpenAI embedder, against a local OpenAI-compatible server (real HTTP):
transient faults are retried and never dead-lettered; an input the API rejects for good is
dead-lettered alone, with the server's reason, and the rest of the batch goes on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

from pydantic import SecretStr

from tests.integration.fake_openai import FakeOpenAI, Reply
from tickerwire.adapters.embed_openai import OpenAIEmbedder, RetryPolicy
from tickerwire.core.records import ChunkRecord, DlqRecord, VectorRecord, parse_record
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.stages.base import InMsg, OutMsg
from tickerwire.stages.embed import EmbedStage

FAST = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, jitter=0.01, max_retry_after=1.0)


class ListSender:
    def __init__(self) -> None:
        self.sent: list[OutMsg] = []

    async def send_all(self, msgs: Sequence[OutMsg]) -> None:
        self.sent.extend(msgs)


def chunk_msg(i: int, text: str) -> InMsg:
    rec = ChunkRecord(
        doc_id=f"d{i}",
        version=1,
        chunk_id=uuid4(),
        chunk_index=0,
        text=text,
        embed_text=text,
        content_hash="0" * 64,
        token_count=5,
        title="",
        url=None,
        source="test",
        doc_type="news",
        tickers=(),
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
        language="en",
        produced_at=datetime.now(UTC),
    )
    return InMsg("tickerwire.docs.chunks", 0, i, f"d{i}".encode(), rec.to_bytes())


async def test_transient_errors_retry_and_a_rejected_input_is_dead_lettered_alone() -> None:
    async with FakeOpenAI(reject_containing="POISON") as server:
        server.push(Reply(429, headers={"Retry-After": "0"}), Reply(503))
        embedder = OpenAIEmbedder(
            api_key=SecretStr("sk-test"),
            base_url=server.base_url,
            dimensions=8,
            retry=FAST,
            timeout_s=5.0,
        )
        sender = ListSender()
        stage = EmbedStage(sender=sender, embedder=embedder, sparse=BM25Encoder())
        texts = ["Revenue rose 12%", "Margins fell", "POISON input", "Guidance raised", "Buyback"]
        try:
            await stage.handle([chunk_msg(i, t) for i, t in enumerate(texts)])
        finally:
            await embedder.aclose()
    records = [parse_record(m.value) for m in sender.sent]
    vectors = [r for r in records if isinstance(r, VectorRecord)]
    dead = [r for r in records if isinstance(r, DlqRecord)]
    assert sorted(v.doc_id for v in vectors) == ["d0", "d1", "d3", "d4"]
    assert all(len(v.dense) == 8 and v.sparse.indices for v in vectors)
    assert [(d.stage, d.error_class, d.doc_id) for d in dead] == [
        ("embed", "EmbeddingPermanentError", "d2")
    ]
    assert "POISON" in dead[0].reason
    assert [m.topic for m in sender.sent].count("tickerwire.docs.dlq") == 1
