"""Stage handlers chained in memory: preprocess → embed → index, with test doubles for the
embedder, sender and index (the real broker and index are in the integration tests)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from semantic_text_splitter import TextSplitter

from tickerwire.core.errors import EmbeddingPermanentError
from tickerwire.core.ports import Point, SparseVector
from tickerwire.core.records import DlqRecord
from tickerwire.stages.base import InMsg, OutMsg
from tickerwire.stages.embed import EmbedStage
from tickerwire.stages.index import IndexStage
from tickerwire.stages.preprocess import ChunkerConfig, PreprocessStage


def words(text: str) -> int:
    return len(text.split())


class ListSender:
    def __init__(self) -> None:
        self.sent: list[OutMsg] = []

    async def send_all(self, msgs: Sequence[OutMsg]) -> None:
        self.sent.extend(msgs)

    def take(self, topic: str) -> list[OutMsg]:
        out = [m for m in self.sent if m.topic == topic]
        self.sent = [m for m in self.sent if m.topic != topic]
        return out


class HashEmbedder:
    """Deterministic test double: never the default, only for stage tests."""

    name = "hash-test"
    dim = 8
    max_tokens = 256

    def __init__(self, poison: str | None = None) -> None:
        self.calls = 0
        self.texts = 0
        self.poison = poison

    def count_tokens(self, text: str) -> int:
        return words(text)

    def splitter(self, capacity: int, overlap: int) -> TextSplitter:
        return TextSplitter.from_callback(words, capacity, overlap)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.poison and any(self.poison in t for t in texts):
            raise EmbeddingPermanentError("input rejected: contains poison")
        self.texts += len(texts)
        return [[b / 255 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return (await self.embed_documents([text]))[0]

    async def aclose(self) -> None:
        return None


class OneHotSparse:
    def encode_query(self, text: str) -> SparseVector:
        return self.encode_document(text)

    def encode_document(self, text: str) -> SparseVector:
        return SparseVector(indices=(1,), values=(1.0,))


class DictIndex:
    backend = "fake"

    def __init__(self) -> None:
        self.points: dict[str, Point] = {}
        self.writes = 0

    async def upsert(self, points: Sequence[Point]) -> None:
        self.writes += 1
        for p in points:
            self.points[p.id] = p

    async def delete_document_except(self, doc_id: str, keep: Sequence[str]) -> int:
        gone = [
            k for k, p in self.points.items() if p.payload["doc_id"] == doc_id and k not in keep
        ]
        for k in gone:
            del self.points[k]
        return len(gone)

    async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        self.writes += 1
        return sum([await self.delete_document_except(d, keep) for d, keep in commits])

    async def refresh_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        self.writes += 1
        for pid, fields in updates:
            if pid in self.points:
                p = self.points[pid]
                self.points[pid] = Point(p.id, p.dense, p.sparse, {**p.payload, **fields})

    def doc_texts(self, doc_id: str) -> list[str]:
        pts = [p for p in self.points.values() if p.payload["doc_id"] == doc_id]
        return [p.payload["text"] for p in sorted(pts, key=lambda p: p.payload["chunk_index"])]


class Pipeline:
    def __init__(
        self, embedder: HashEmbedder | None = None, *, tombstone_retention_s: float = 86_400.0
    ) -> None:
        self.sender = ListSender()
        self.state: dict[bytes, Any] = {}
        self.embedder = embedder or HashEmbedder()
        self.index = DictIndex()
        chunker = ChunkerConfig(
            make_splitter=self.embedder.splitter, count_tokens=words, max_tokens=30, overlap=0
        )
        self.pre = PreprocessStage(
            sender=self.sender,
            state=self.state,
            chunker=chunker,
            max_body_bytes=10_000,
            tombstone_retention_s=tombstone_retention_s,
        )
        self.emb = EmbedStage(sender=self.sender, embedder=self.embedder, sparse=OneHotSparse())
        self.idx = IndexStage(index=self.index, sender=self.sender)  # type: ignore[arg-type]
        self.offset = 0
        self.clock_ms = 1_700_000_000_000  # the Kafka timestamp of the next raw records
        self.dlq: list[DlqRecord] = []

    def raw(self, value: bytes, key: bytes) -> InMsg:
        self.offset += 1
        return InMsg("tickerwire.docs.raw", 0, self.offset, key, value, (), self.clock_ms)

    async def run(self, *values: bytes | dict[str, Any]) -> None:
        msgs = []
        for v in values:
            data = json.dumps(v).encode() if isinstance(v, dict) else v
            key = v["doc_id"].encode() if isinstance(v, dict) else b"bad"
            msgs.append(self.raw(data, key))
        await self.pre.handle(msgs)
        chunks = self.sender.take("tickerwire.docs.chunks")
        if chunks:
            await self.emb.handle(
                [InMsg(m.topic, 0, i, m.key, m.value) for i, m in enumerate(chunks)]
            )
        vectors = self.sender.take("tickerwire.docs.vectors")
        if vectors:
            await self.idx.handle(
                [InMsg(m.topic, 0, i, m.key, m.value) for i, m in enumerate(vectors)]
            )
        self.dlq += [DlqRecord.from_bytes(m.value) for m in self.sender.take("tickerwire.docs.dlq")]


def doc(doc_id: str, version: int, paragraphs: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "schema": "raw-document/v1",
        "doc_id": doc_id,
        "op": "upsert",
        "version": version,
        "source": "test",
        "doc_type": "news",
        "title": f"Title {doc_id}",
        "body": "\n\n".join(paragraphs),
        "content_type": "text/plain",
        "published_at": datetime(2026, 11, 27, tzinfo=UTC).isoformat(),
        "tickers": ["ACME"],
        **extra,
    }


PARAS = [f"Paragraph {i} says " + " ".join(f"w{i}x{j}" for j in range(20)) for i in range(4)]


async def test_new_unchanged_updated_and_deleted_documents() -> None:
    p = Pipeline()
    await p.run(doc("d1", 1, PARAS))
    first = dict(p.index.points)
    assert len(first) == 4 and p.embedder.texts == 4
    writes = p.index.writes

    await p.run(doc("d1", 1, PARAS))  # identical re-send
    assert p.embedder.texts == 4 and p.index.writes == writes

    changed = [PARAS[0], "Paragraph 1 was rewritten entirely " + "z " * 10, PARAS[2], PARAS[3]]
    await p.run(doc("d1", 2, changed))
    assert p.embedder.texts == 5  # only the changed chunk was embedded
    assert set(p.index.points) & set(first) == {
        k for k in first if "Paragraph 1 " not in first[k].payload["text"]
    }
    assert any("rewritten" in t for t in p.index.doc_texts("d1"))
    assert len(p.index.points) == 4

    await p.run({"schema": "raw-document/v1", "doc_id": "d1", "op": "delete", "version": 3})
    assert p.index.points == {}
    assert json.loads(p.state[b"d1"])["chunk_ids"] == []  # a tombstone of version 3


def delete(doc_id: str, version: int) -> dict[str, Any]:
    return {"schema": "raw-document/v1", "doc_id": doc_id, "op": "delete", "version": version}


async def test_a_stale_upsert_after_a_delete_does_not_bring_the_document_back() -> None:
    p = Pipeline()
    await p.run(doc("d5", 2, PARAS))
    await p.run(delete("d5", 3))
    await p.run(doc("d5", 2, PARAS))  # late and older (a retry, a replay): ignored
    assert p.index.doc_texts("d5") == []
    await p.run(doc("d5", 3, PARAS))  # the deleted version itself: still deleted
    assert p.index.doc_texts("d5") == []
    await p.run(doc("d5", 4, PARAS))  # newer than the delete: the document is back
    assert len(p.index.doc_texts("d5")) == 4


async def test_a_tombstone_counts_for_its_retention_only() -> None:
    p = Pipeline(tombstone_retention_s=60)
    await p.run(doc("d6", 2, PARAS))
    await p.run(delete("d6", 3))
    p.clock_ms += 30_000
    await p.run(doc("d6", 2, PARAS))
    assert p.index.doc_texts("d6") == []
    p.clock_ms += 61_000  # past the retention: the version is forgotten
    await p.run(doc("d6", 2, PARAS))
    assert len(p.index.doc_texts("d6")) == 4


async def test_out_of_order_versions_keep_the_newest() -> None:
    p = Pipeline()
    await p.run(doc("d2", 2, ["version two text " * 5]))
    await p.run(doc("d2", 1, ["version one text " * 5]))
    assert all("two" in t for t in p.index.doc_texts("d2"))


async def test_two_versions_in_one_batch_leave_only_the_second() -> None:
    p = Pipeline()
    await p.run(doc("d3", 1, ["first body " * 5]), doc("d3", 2, ["second body " * 5]))
    assert p.index.doc_texts("d3") == [("second body " * 5).strip()]


async def test_bad_records_go_to_the_dlq_and_the_rest_flows() -> None:
    p = Pipeline()
    await p.run(
        b"{not json",
        doc("ok", 1, PARAS[:1]),
        {"schema": "raw-document/v1", "doc_id": "x"},
        doc("big", 1, ["x" * 20_000]),
    )
    assert [r.error_class for r in p.dlq] == ["DecodeError", "ValidationError", "TooLargeError"]
    assert all(r.reason for r in p.dlq)
    assert p.dlq[0].original.value_bytes() == b"{not json"
    assert p.index.doc_texts("ok")


async def test_a_permanent_embedding_error_dead_letters_only_that_chunk() -> None:
    p = Pipeline(HashEmbedder(poison="POISON"))
    await p.run(
        doc("a", 1, ["fine text " * 5]),
        doc("b", 1, ["POISON text " * 5]),
        doc("c", 1, ["also fine " * 5]),
    )
    assert [(r.stage, r.error_class, r.doc_id) for r in p.dlq] == [
        ("embed", "EmbeddingPermanentError", "b")
    ]
    assert p.index.doc_texts("a") and p.index.doc_texts("c") and not p.index.doc_texts("b")


async def test_preprocess_threads_give_the_same_records_in_the_same_order() -> None:
    batch = [doc(f"t{i}", 1, PARAS[: 1 + i % 4]) for i in range(9)]
    batch.insert(4, doc("t2", 2, ["a second version in the same batch " * 3]))
    outputs = []
    for threads in (1, 3):
        p = Pipeline()
        p.pre = PreprocessStage(
            sender=p.sender,
            state=p.state,
            chunker=p.pre._chunker,
            max_body_bytes=10_000,
            threads=threads,
        )
        await p.pre.handle([p.raw(json.dumps(d).encode(), d["doc_id"].encode()) for d in batch])
        outputs.append([(m.key, m.value) for m in p.sender.take("tickerwire.docs.chunks")])
    assert outputs[0] and outputs[0] == outputs[1]
    with pytest.raises(ValueError, match="threads"):
        PreprocessStage(
            sender=ListSender(), state={}, chunker=p.pre._chunker, max_body_bytes=1, threads=0
        )


async def test_market_numbers_and_fiscal_facts_flow_from_raw_metadata_to_the_index_payload() -> (
    None
):
    p = Pipeline()
    market = doc(
        "mkt:ACME:2026-11-27",
        1,
        PARAS[:1],
        doc_type="market_stats",
        metadata={"price": 12.5, "change": -0.75, "change_pct": -5.66, "volume": 1200, "x": "y"},
    )
    filing = doc(
        "f1",
        1,
        PARAS[:1],
        doc_type="filing",
        metadata={"company": "Acme", "fiscal_period": "FY2026"},
    )
    await p.run(market, filing)
    assert p.dlq == []
    (mkt,) = [q for q in p.index.points.values() if q.payload["doc_id"] == market["doc_id"]]
    assert {k: mkt.payload[k] for k in ("price", "change", "change_pct", "volume")} == {
        "price": 12.5,
        "change": -0.75,
        "change_pct": -5.66,
        "volume": 1200.0,
    }
    assert "company" not in mkt.payload and "x" not in mkt.payload
    (fil,) = [q for q in p.index.points.values() if q.payload["doc_id"] == "f1"]
    assert (fil.payload["company"], fil.payload["fiscal_period"], fil.payload["fiscal_year"]) == (
        "Acme",
        "FY2026",
        2026,
    )
    assert "price" not in fil.payload


async def test_a_changed_market_number_alone_reindexes_the_document() -> None:
    p = Pipeline()
    await p.run(doc("m", 1, PARAS[:1], doc_type="market_stats", metadata={"price": 1.0}))
    await p.run(doc("m", 2, PARAS[:1], doc_type="market_stats", metadata={"price": 2.0}))
    (point,) = p.index.points.values()
    assert point.payload["price"] == 2.0


async def test_a_metadata_only_change_embeds_nothing_and_updates_the_payloads() -> None:
    p = Pipeline()
    await p.run(doc("d7", 1, PARAS, url="https://example.com/old"))
    assert p.embedder.texts == 4
    await p.run(doc("d7", 2, PARAS, url="https://example.com/new", source="wire-2"))
    assert p.embedder.texts == 4  # nothing embedded again
    payloads = [pt.payload for pt in p.index.points.values()]
    assert len(payloads) == 4
    assert {(pl["url"], pl["source"], pl["version"]) for pl in payloads} == {
        ("https://example.com/new", "wire-2", 2)
    }


async def test_chunks_kept_by_a_new_version_get_their_new_position() -> None:
    p = Pipeline()
    await p.run(doc("d8", 1, PARAS))
    inserted = "Paragraph new comes first " + " ".join(f"n{j}" for j in range(20))
    await p.run(doc("d8", 2, [inserted, *PARAS]))
    assert p.embedder.texts == 5  # only the new paragraph
    by_index = sorted(
        (pt.payload["chunk_index"], pt.payload["text"]) for pt in p.index.points.values()
    )
    assert [i for i, _ in by_index] == [0, 1, 2, 3, 4]
    assert by_index[0][1].startswith("Paragraph new")
    assert [t[:11] for _, t in by_index[1:]] == [f"Paragraph {i}" for i in range(4)]


@pytest.mark.parametrize(
    ("doc_type", "metadata", "reason"),
    [
        ("market_stats", {"price": "12.5"}, "$.metadata.price: '12.5' is not of type 'number'"),
        ("market_stats", {"volume": True}, "$.metadata.volume: True is not of type 'number'"),
        ("market_stats", {"volume": -3}, "$.metadata.volume: -3 is less than the minimum of 0"),
        ("filing", {"company": 7}, "$.metadata.company: 7 is not of type 'string'"),
        ("filing", {"fiscal_period": ""}, "$.metadata.fiscal_period: '' should be non-empty"),
    ],
)
async def test_a_metadata_fact_of_the_wrong_type_is_dead_lettered_with_its_path(
    doc_type: str, metadata: dict[str, Any], reason: str
) -> None:
    p = Pipeline()
    await p.run(doc("bad", 1, PARAS[:1], doc_type=doc_type, metadata=metadata))
    assert len(p.dlq) == 1
    assert p.dlq[0].reason.startswith(reason)
    assert p.index.points == {}


async def test_market_numbers_of_other_document_types_stay_plain_metadata() -> None:
    p = Pipeline()
    await p.run(doc("n", 1, PARAS[:1], metadata={"price": "n/a"}))
    assert p.dlq == []
    (point,) = p.index.points.values()
    assert "price" not in point.payload
