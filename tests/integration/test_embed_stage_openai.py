"""The embed stage on the OpenAI embedder through the stage batch path, against a local
OpenAI-compatible server (real HTTP): transient faults are retried (Retry-After honoured) and never
dead-lettered; an input the API rejects for good is dead-lettered alone, with the server's reason,
and the rest of the batch goes on."""

from __future__ import annotations

from pydantic import SecretStr

from tests.integration.fake_openai import FakeOpenAI, Reply
from tests.stage_support import ListSender, chunk_msg
from tickerwire.adapters.embed_openai import OpenAIEmbedder
from tickerwire.core.records import DlqRecord, VectorRecord, parse_record
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.stages.app import run_batch
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.retry import RetryPolicy


async def _no_stop(stage: str, exc: BaseException) -> None:
    raise AssertionError(f"the worker was stopped: {exc!r}")


async def test_transient_errors_retry_and_a_rejected_input_is_dead_lettered_alone() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with FakeOpenAI(reject_containing="POISON") as server:
        server.push(Reply(429, headers={"Retry-After": "0.3"}), Reply(503))
        embedder = OpenAIEmbedder(
            api_key=SecretStr("sk-test"),
            base_url=server.base_url,
            dimensions=8,
            timeout_s=5.0,
        )
        sender = ListSender()
        stage = EmbedStage(sender=sender, embedder=embedder, sparse=BM25Encoder())
        texts = ["Revenue rose 12%", "Margins fell", "POISON input", "Guidance raised", "Buyback"]
        try:
            await run_batch(
                "embed",
                stage.handle,
                sender,
                [chunk_msg(i, t) for i, t in enumerate(texts)],
                policy=RetryPolicy(initial=0.01, maximum=0.05, sleep=sleep),
                stop=_no_stop,
            )
        finally:
            await embedder.aclose()
    assert len(waits) == 2 and waits[0] >= 0.3  # the server's Retry-After is honoured
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
