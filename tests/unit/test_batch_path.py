"""The stage batch path (``run_batch``) with a real stage handler: what each kind of error does.

Transient faults hold the batch and never dead-letter; a permanent fault dead-letters only the bad
records; a fatal one stops the worker with nothing dead-lettered and the batch unacknowledged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import REGISTRY
from tests.stage_support import ListSender, chunk_msg
from tests.unit.test_sequencing import FakeLog

from tickerwire.core.errors import (
    BrokerUnavailableError,
    EmbeddingPermanentError,
    EmbeddingRejectedError,
    EmbeddingTransientError,
    PermanentError,
    TickerwireError,
)
from tickerwire.core.ports import Point, SparseVector
from tickerwire.core.records import VectorRecord, parse_record
from tickerwire.core.topics import CHUNKS_TOPIC, VECTORS_TOPIC
from tickerwire.stages.app import run_batch, sequenced_batch
from tickerwire.stages.base import InMsg, OutMsg
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.index import IndexStage
from tickerwire.stages.retry import RetryPolicy
from tickerwire.stages.sequencing import Sequencer

P0 = TP(CHUNKS_TOPIC, 0)


class Sleeps:
    """The policy's sleep: records the waits, never waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FaultyEmbedder:
    """Raises the queued errors, one per call, then embeds; ``poison`` texts always fail."""

    name = "faulty-test"
    dim = 4
    max_tokens = 256

    def __init__(self, *errors: TickerwireError, poison: str | None = None) -> None:
        self.errors = list(errors)
        self.poison = poison
        self.calls = 0

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        if self.poison and any(self.poison in t for t in texts):
            raise EmbeddingPermanentError("input rejected")
        return [[1.0, 0.0, 0.0, float(len(t))] for t in texts]


class OneHotSparse:
    def encode_document(self, text: str) -> SparseVector:
        return SparseVector(indices=(1,), values=(1.0,))


class Stops:
    """The worker's stop: records the call."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def __call__(self, stage: str, exc: BaseException) -> None:
        self.errors.append(exc)


def retries(stage: str, error_class: str) -> float:
    value = REGISTRY.get_sample_value(
        "tickerwire_stage_retries_total", {"stage": stage, "error_class": error_class}
    )
    return value or 0.0


def batch_of(n: int) -> list[InMsg]:
    return [chunk_msg(i, f"text {i}") for i in range(n)]


def events(start: int, stop: int) -> list[Any]:
    """faust events of chunk records start..stop-1 of partition 0, as the agent gets them."""
    out = []
    for i in range(start, stop):
        msg = chunk_msg(i, f"text {i}")
        message = SimpleNamespace(
            tp=P0,
            topic=msg.topic,
            partition=0,
            offset=i,
            key=msg.key,
            value=msg.value,
            headers=[],
            timestamp=None,
        )
        out.append(SimpleNamespace(message=message))
    return out


def vector_docs(sender: ListSender) -> list[str]:
    recs = [parse_record(m.value) for m in sender.sent if m.topic == VECTORS_TOPIC]
    return [r.doc_id for r in recs if isinstance(r, VectorRecord)]


async def test_a_transient_outage_holds_the_batch_until_it_clears_dead_lettering_nothing() -> None:
    # Far more failures than the 5 attempts after which the old batch path dead-lettered.
    outage = [EmbeddingTransientError("HTTP 503") for _ in range(12)]
    outage[3] = EmbeddingTransientError("HTTP 429", retry_after=7.5)
    embedder = FaultyEmbedder(*outage)
    sender = ListSender()
    stage = EmbedStage(sender=sender, embedder=embedder, sparse=OneHotSparse())
    sleeps = Sleeps()
    before = retries("embed", "EmbeddingTransientError")
    await run_batch(
        "embed", stage.handle, sender, batch_of(3), policy=RetryPolicy(sleep=sleeps), stop=Stops()
    )
    assert sender.dead() == []
    assert vector_docs(sender) == ["d0", "d1", "d2"]
    assert embedder.calls == 13
    assert len(sleeps.waits) == 12
    assert sleeps.waits[3] >= 7.5  # the server's Retry-After is honoured
    assert max(sleeps.waits) <= 30.0  # capped
    assert retries("embed", "EmbeddingTransientError") - before == 12


async def test_a_broker_outage_while_sending_is_retried_not_dead_lettered() -> None:
    class FlakySender(ListSender):
        failures = 8

        async def send_all(self, msgs: Sequence[OutMsg]) -> None:
            if self.failures:
                self.failures -= 1
                raise BrokerUnavailableError("Kafka: KafkaConnectionError")
            await super().send_all(msgs)

    sender = FlakySender()
    stage = EmbedStage(sender=sender, embedder=FaultyEmbedder(), sparse=OneHotSparse())
    await run_batch(
        "embed", stage.handle, sender, batch_of(2), policy=RetryPolicy(sleep=Sleeps()), stop=Stops()
    )
    assert sender.dead() == []
    assert vector_docs(sender) == ["d0", "d1"]


async def test_a_permanent_error_dead_letters_only_the_bad_records() -> None:
    class PickyIndex:
        backend = "fake"

        def __init__(self) -> None:
            self.points: dict[str, Point] = {}

        async def upsert(self, points: Sequence[Point]) -> None:
            if any(p.payload["doc_id"] in ("d2", "d5") for p in points):
                raise PermanentError("point rejected by the index")
            self.points.update((p.id, p) for p in points)

        async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
            return 0

        async def refresh_payloads(self, updates: Sequence[tuple[str, Any]]) -> None:
            return None

    embed_out = ListSender()
    embed = EmbedStage(sender=embed_out, embedder=FaultyEmbedder(), sparse=OneHotSparse())
    await embed.handle(batch_of(8))
    vectors = [InMsg(VECTORS_TOPIC, 0, i, m.key, m.value) for i, m in enumerate(embed_out.sent)]
    index = PickyIndex()
    sender = ListSender()
    stage = IndexStage(index=index, sender=sender)  # type: ignore[arg-type]
    stops = Stops()
    await run_batch(
        "index", stage.handle, sender, vectors, policy=RetryPolicy(sleep=Sleeps()), stop=stops
    )
    dead = sender.dead()
    assert [(d.stage, d.error_class, d.doc_id) for d in dead] == [
        ("index", "PermanentError", "d2"),
        ("index", "PermanentError", "d5"),
    ]
    assert dead[0].original.offset == 2
    indexed = sorted(p.payload["doc_id"] for p in index.points.values())
    assert indexed == ["d0", "d1", "d3", "d4", "d6", "d7"]
    assert stops.errors == []


async def test_a_permanent_embedding_error_dead_letters_only_that_chunk() -> None:
    sender = ListSender()
    embedder = FaultyEmbedder(poison="POISON")
    stage = EmbedStage(sender=sender, embedder=embedder, sparse=OneHotSparse())
    batch = [chunk_msg(i, t) for i, t in enumerate(["ok", "fine", "POISON", "good"])]
    await run_batch(
        "embed", stage.handle, sender, batch, policy=RetryPolicy(sleep=Sleeps()), stop=Stops()
    )
    assert [(d.error_class, d.doc_id) for d in sender.dead()] == [("EmbeddingPermanentError", "d2")]
    assert sorted(vector_docs(sender)) == ["d0", "d1", "d3"]


async def test_an_unexpected_exception_dead_letters_only_the_record_that_raises_it() -> None:
    class Buggy(FaultyEmbedder):
        async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
            if any("odd" in t for t in texts):
                raise ZeroDivisionError("a bug this record triggers")
            return await super().embed_documents(texts)

    sender = ListSender()
    stage = EmbedStage(sender=sender, embedder=Buggy(), sparse=OneHotSparse())
    batch = [chunk_msg(i, t) for i, t in enumerate(["a", "odd one", "b"])]
    sleeps = Sleeps()
    await run_batch(
        "embed", stage.handle, sender, batch, policy=RetryPolicy(sleep=sleeps), stop=Stops()
    )
    assert [(d.error_class, d.doc_id) for d in sender.dead()] == [("ZeroDivisionError", "d1")]
    assert sorted(vector_docs(sender)) == ["d0", "d2"]
    assert sleeps.waits == []  # not retried


async def test_a_rejected_api_key_stops_the_worker_with_nothing_dead_lettered_or_acked() -> None:
    embedder = FaultyEmbedder(EmbeddingRejectedError("HTTP 401: Incorrect API key provided"))
    sender = ListSender()
    stage = EmbedStage(sender=sender, embedder=embedder, sparse=OneHotSparse())
    stops = Stops()
    sleeps = Sleeps()
    log = FakeLog(records={P0: list(range(10))})
    sequencer = Sequencer(log, {CHUNKS_TOPIC: "embed"})

    def run(batch: list[InMsg]) -> Awaitable[bool]:
        return run_batch(
            "embed", stage.handle, sender, batch, policy=RetryPolicy(sleep=sleeps), stop=stops
        )

    await sequenced_batch("embed", CHUNKS_TOPIC, events(0, 4), sequencer, run)
    assert [type(e).__name__ for e in stops.errors] == ["EmbeddingRejectedError"]
    assert sender.sent == []  # nothing dead-lettered (nor produced)
    assert embedder.calls == 1 and sleeps.waits == []  # neither retried nor narrowed down
    assert sequencer.committable(P0) == 0  # the batch is not acknowledged
    # While the worker stops, nothing after the failed batch is processed or committed.
    await sequenced_batch("embed", CHUNKS_TOPIC, events(4, 6), sequencer, run)
    assert embedder.calls == 1 and sequencer.committable(P0) == 0


async def test_a_processed_batch_becomes_committable() -> None:
    sender = ListSender()
    stage = EmbedStage(sender=sender, embedder=FaultyEmbedder(), sparse=OneHotSparse())
    sequencer = Sequencer(FakeLog(records={P0: list(range(10))}), {CHUNKS_TOPIC: "embed"})

    def run(batch: list[InMsg]) -> Awaitable[bool]:
        return run_batch("embed", stage.handle, sender, batch, policy=RetryPolicy(sleep=Sleeps()))

    await sequenced_batch("embed", CHUNKS_TOPIC, events(0, 4), sequencer, run)
    assert sequencer.committable(P0) == 4
    assert vector_docs(sender) == ["d0", "d1", "d2", "d3"]
