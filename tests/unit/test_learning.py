"""The learning loop's pure parts: the join, the fine-tuning checks, the key hash, the buffer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from tickerwire.adapters.query_log import KafkaQueryLog
from tickerwire.core.records import ExampleRecord, FeedbackRecord, QueryLogRecord
from tickerwire.core.settings import Settings
from tickerwire.core.topics import QUERIES_TOPIC
from tickerwire.evaluation.finetune import (
    count_message_tokens,
    export_finetune,
    figures,
    format_errors,
    ungrounded_figures,
    validate_file,
)
from tickerwire.pipeline.feedback_join import JoinEntry, expired, join, verdict
from tickerwire.query.ask import AskEvent
from tickerwire.query.learning import LoggedRequest, QueryRecorder, key_hasher
from tickerwire.stages.base import OutMsg
from tickerwire.stages.feedback import FeedbackJoin

QID = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONTEXT = "NVIDIA reported revenue of $68.4 billion, up 1,234 units."


def query(**fields: Any) -> QueryLogRecord:
    base: dict[str, Any] = {
        "query_id": QID,
        "endpoint": "ask",
        "asked_at": T0,
        "question": "What revenue did NVIDIA report?",
        "mode": "hybrid",
        "k": 5,
        "context": [
            {
                "n": 1,
                "doc_id": "filing:NVDA",
                "chunk_id": "filing:NVDA#0",
                "title": "NVIDIA 10-Q",
                "published_at": None,
                "text": CONTEXT,
            }
        ],
        "answer": "Revenue was $68.4 billion. [1]",
        "grounded": True,
        "citations": [{"n": 1, "doc_id": "filing:NVDA", "chunk_id": "filing:NVDA#0"}],
    }
    return QueryLogRecord.model_validate(base | fields)


def feedback(rating: int = 1, **fields: Any) -> FeedbackRecord:
    return FeedbackRecord.model_validate(
        {"query_id": QID, "rating": rating, "given_at": T0} | fields
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("q", "f", "expected"),
    [
        (query(), feedback(1), ("approved", "rated_up")),
        (query(), feedback(-1), ("failure", "rated_down")),
        (query(), None, None),
        (query(grounded=False, citations=[]), None, ("failure", "refused")),
        (query(grounded=False, citations=[]), feedback(-1), ("failure", "refused")),
        (query(), feedback(1, wrong_citations=[1]), ("failure", "citation_marked_wrong")),
        (query(citations_dropped=1), feedback(1), ("failure", "citation_dropped")),
        (query(endpoint="search", answer=None, grounded=None), feedback(1), None),
    ],
)
def test_verdict_says_what_a_rated_query_is_worth(
    q: QueryLogRecord, f: FeedbackRecord | None, expected: tuple[str, str] | None
) -> None:
    assert verdict(q, f) == expected


def test_feedback_that_arrives_before_its_query_is_kept_and_joined_later() -> None:
    early = join(None, feedback(1), now=100.0)
    assert early.example is None and early.entry.query is None
    stored = JoinEntry.from_bytes(early.entry.to_bytes())
    late = join(stored, query(), now=101.0)
    assert late.example is not None
    assert (late.example.kind, late.example.reason) == ("approved", "rated_up")
    assert late.example.feedback == feedback(1)
    assert ExampleRecord.from_bytes(late.example.to_bytes()) == late.example


def test_the_latest_rating_wins() -> None:
    first = join(None, query(), now=1.0)
    up = join(first.entry, feedback(1), now=2.0)
    down = join(up.entry, feedback(-1), now=3.0)
    assert up.example is not None and up.example.kind == "approved"
    assert down.example is not None and down.example.reason == "rated_down"


def test_entries_expire_after_the_retention() -> None:
    entry = JoinEntry(query=None, feedback=feedback(), touched=100.0)
    assert not expired(entry, 150.0, 60.0)
    assert expired(entry, 161.0, 60.0)


class ListSender:
    def __init__(self) -> None:
        self.sent: list[OutMsg] = []

    async def send_all(self, msgs: Any) -> None:
        self.sent.extend(msgs)


async def test_the_join_agent_writes_examples_and_counts_expired_and_refused_rated_down() -> None:
    table: dict[bytes, bytes] = {}
    sender = ListSender()
    joiner = FeedbackJoin(table=table, sender=sender, retention_s=60.0)
    refused_down = sample("tickerwire_feedback_refused_rated_down_total")
    expired_before = sample("tickerwire_feedback_expired_total")
    await joiner.handle(QID.encode(), feedback(-1).to_bytes(), now=10.0)
    assert sender.sent == []
    await joiner.handle(QID.encode(), query(grounded=False, citations=[]).to_bytes(), now=11.0)
    assert len(sender.sent) == 1
    example = ExampleRecord.from_bytes(sender.sent[0].value)
    assert (example.kind, example.reason) == ("failure", "refused")
    await joiner.handle(QID.encode(), feedback(-1).to_bytes(), now=12.0)
    assert sample("tickerwire_feedback_refused_rated_down_total") == refused_down + 1
    await joiner.handle(b"x", b"not json", now=13.0)  # skipped, not fatal
    other = "f" * 32
    await joiner.handle(other.encode(), feedback(1, query_id=other).to_bytes(), now=13.0)
    assert joiner.sweep(now=100.0) == 2
    assert table == {}
    assert sample("tickerwire_feedback_expired_total") == expired_before + 1


def test_figures_ignore_citation_markers_and_thousands_separators() -> None:
    assert figures("Revenue was $1,234.50 million [1], up 7% [2, 3].") == {"1234.5", "7"}
    assert ungrounded_figures("Revenue was $68.4 billion. [1]", [CONTEXT]) == set()
    assert ungrounded_figures("Revenue was $70 billion. [1]", [CONTEXT]) == {"70"}


def test_format_errors_are_those_of_openais_checks() -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert format_errors(good) == []
    assert format_errors([]) == ["data_type"]
    assert format_errors({"messages": []}) == ["missing_messages_list"]
    assert format_errors({"messages": [{"role": "robot", "content": "x"}]}) == [
        "unrecognized_role",
        "example_missing_assistant_message",
    ]
    assert "missing_content" in format_errors(
        {"messages": [{"role": "assistant", "content": "  "}]}
    )
    assert "message_unrecognized_key" in format_errors(
        {"messages": [{"role": "assistant", "content": "a", "extra": 1}]}
    )
    assert count_message_tokens(good["messages"], len) == 3 + 3 + 4 + 1 + 3 + 9 + 1


def _approved(qid: str, **fields: Any) -> ExampleRecord:
    q = query(query_id=qid, **fields)
    return ExampleRecord(
        query_id=qid, kind="approved", reason="rated_up", joined_at=T0, query=q, feedback=None
    )


def test_export_finetune_keeps_only_approved_grounded_distinct_examples(tmp_path: Path) -> None:
    ids = [f"{n:032x}" for n in range(6)]
    examples = [
        _approved(ids[0]),
        _approved(ids[1], question="What did NVIDIA report?"),
        _approved(ids[2], question="What did NVIDIA report?"),  # duplicate line
        _approved(ids[3], answer="Revenue was $99 billion. [1]"),  # number not in context
        ExampleRecord(
            query_id=ids[4], kind="failure", reason="rated_down", joined_at=T0, query=query()
        ),
        _approved(ids[5], question="How much revenue?"),
    ]
    summary = export_finetune(examples, tmp_path, (lambda t: len(t.split()), "words", False))
    assert summary.approved == 5
    assert summary.examples == 3 and summary.train == 2 and summary.validation == 1
    assert summary.left_out == {"duplicate": 1, "number_not_in_context": 1}
    assert summary.estimated_cost_usd > 0
    for name in ("train.jsonl", "validation.jsonl"):
        assert not validate_file(tmp_path / name, lambda t: len(t.split()), 65_536)
    line = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in line["messages"]] == ["system", "user", "assistant"]
    assert '<document n="1"' in line["messages"][1]["content"]
    assert json.loads((tmp_path / "summary.json").read_text())["token_counts_exact"] is False


def test_validate_file_flags_duplicates_and_long_examples(tmp_path: Path) -> None:
    line = json.dumps({"messages": [{"role": "assistant", "content": "a b c"}]})
    path = tmp_path / "x.jsonl"
    path.write_text(f"{line}\n{line}\n")
    errors = validate_file(path, lambda t: len(t.split()), 5)
    assert errors == {"duplicate": 1, "too_many_tokens": 2}


def test_the_key_hash_is_keyed_stable_and_never_the_key() -> None:
    a, b = key_hasher(b"salt-a"), key_hasher(b"salt-b")
    assert a("secret-key") == a("secret-key") != b("secret-key")
    assert len(a("secret-key")) == 16 and "secret" not in a("secret-key")
    assert key_hasher()("k") != key_hasher()("k")  # unset salt: random per process


class RecordingSink:
    def __init__(self) -> None:
        self.items: list[tuple[str, bytes, bytes]] = []

    def offer(self, topic: str, key: bytes, value: bytes) -> bool:
        self.items.append((topic, key, value))
        return True


def test_the_recorder_redacts_the_question_and_comment() -> None:
    sink = RecordingSink()
    rec = QueryRecorder(sink, clock=lambda: T0)
    rec.ask(
        LoggedRequest(
            "Revenue? mail a.b@mail.example or call +1 415 555 2671", "hybrid", 5, {}, "ab" * 8
        ),
        AskEvent("final", {"query_id": QID, "answer": "x", "grounded": False, "citations": []}),
    )
    rec.feedback(
        QID,
        -1,
        comment="write to a.b@mail.example",
        corrected_answer=None,
        wrong_citations=[2, 2],
        key_hash=None,
    )
    logged = QueryLogRecord.from_bytes(sink.items[0][2])
    assert logged.question == "Revenue? mail [EMAIL] or call [PHONE]"
    assert logged.redactions == {"email": 1, "phone": 1}
    fb = FeedbackRecord.from_bytes(sink.items[1][2])
    assert fb.comment == "write to [EMAIL]" and fb.wrong_citations == (2,)
    assert sink.items[0][1] == QID.encode()


class NeverConnects:
    async def start(self) -> None:
        raise KafkaConnectionError("no broker")

    async def stop(self) -> None:
        return None


async def test_a_full_buffer_drops_and_counts_instead_of_waiting() -> None:
    log = KafkaQueryLog(Settings(), maxsize=2, producer_factory=NeverConnects)  # type: ignore[arg-type]
    before = sample("tickerwire_query_log_records_total", topic=QUERIES_TOPIC, outcome="dropped")
    results = [log.offer(QUERIES_TOPIC, b"k", b"v") for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert log.dropped == 3
    assert (
        sample("tickerwire_query_log_records_total", topic=QUERIES_TOPIC, outcome="dropped")
        == before + 3
    )
    await log.aclose(flush_s=0.1)
    assert log.offer(QUERIES_TOPIC, b"k", b"v") is False  # closed: nothing is taken any more


def test_a_record_the_schema_refuses_is_counted_as_failed_not_raised_into_the_query() -> None:
    sink = RecordingSink()
    failed = sample("tickerwire_query_log_records_total", topic=QUERIES_TOPIC, outcome="failed")
    final = AskEvent("final", {"query_id": "not-a-query-id", "answer": "x", "grounded": False})
    request = LoggedRequest("q", "hybrid", 5, {}, None)
    assert QueryRecorder(sink).ask(request, final) is False
    assert sink.items == []
    assert (
        sample("tickerwire_query_log_records_total", topic=QUERIES_TOPIC, outcome="failed")
        == failed + 1
    )
