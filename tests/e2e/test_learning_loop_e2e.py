"""The learning loop end to end: the sample feed through the real broker and `tickerwire up`.

Twenty questions go through /v1/ask, some are rated up, some down, one has a citation marked
wrong. The join agent (run by `up`) must then leave on tickerwire.examples exactly the approved
answers and the failures of these queries; `export finetune` writes files that pass the
validator and hold only approved, grounded answers; `export evalset` writes a dataset that
`tickerwire eval` runs and scores; a question carrying an e-mail address and a phone number is
logged redacted.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stream_support import run_eval_cli
from tests.e2e.support import TICKERWIRE, Worker, wait_until
from tests.kafka_support import free_port, run_async
from tickerwire.adapters.query_log import read_topic
from tickerwire.core.records import ExampleRecord, QueryLogRecord
from tickerwire.core.settings import Settings
from tickerwire.core.topics import EXAMPLES_TOPIC, QUERIES_TOPIC
from tickerwire.evaluation.finetune import token_counter, validate_file
from tickerwire.evaluation.learning import latest_examples

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

PII = "jane.doe@mail.example"
PHONE = "+1 212-555-0147"
QUESTIONS = [
    "What revenue did NVIDIA report for the third quarter of fiscal 2027?",
    "How many vehicles did Tesla deliver in the third quarter?",
    "What was JPMorgan Chase third-quarter profit?",
    "How much did Bank of America profit rise in the third quarter?",
    "What was UnitedHealth's medical cost ratio in the third quarter?",
    f"What was Netflix third-quarter revenue? Reach me at {PII} or {PHONE}",
    "How much did Coca-Cola organic revenue grow?",
    "What was Tesla's automotive margin in the third quarter?",
    "How fast did Azure grow for Microsoft?",
    "What was Meta's revenue and how much did it climb?",
    "At what level did the ECB hold its deposit rate?",
    "How much did AWS grow in the third quarter?",
    "What revenue forecast did Eli Lilly give for 2026?",
    "How much will Pfizer pay for Cardiant Therapeutics?",
    "What was Tesla's revenue in 2019?",
    "Who won the football world cup in 1966?",
    "What is the boiling point of liquid nitrogen?",
    "What did Walmart report for fiscal 2019 same-store sales?",
    "How many moons does Jupiter have?",
    "What is the recipe for a classic margherita pizza?",
]


def _post(worker: Worker, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = worker.client.post(path, json=body)
    assert resp.status_code in (200, 202), resp.text
    data: dict[str, Any] = resp.json()
    return data


@pytest.fixture(scope="module")
def worker(sample_feed_worker: Worker) -> Worker:
    return sample_feed_worker


@pytest.fixture(scope="module")
def rated(worker: Worker) -> dict[str, Any]:
    """Asks the twenty questions and rates them; returns answers and the expected examples."""
    answers = [_post(worker, "/v1/ask", {"question": q}) for q in QUESTIONS]
    grounded = [a for a in answers if a["grounded"]]
    refused = [a for a in answers if not a["grounded"]]
    assert len(grounded) >= 8 and len(refused) >= 3, [a["grounded"] for a in answers]
    expected: dict[str, tuple[str, str]] = {a["query_id"]: ("failure", "refused") for a in refused}
    for a in grounded[:5]:
        _post(worker, "/v1/feedback", {"query_id": a["query_id"], "rating": 1})
        expected[a["query_id"]] = ("approved", "rated_up")
    for a in grounded[5:7]:
        _post(worker, "/v1/feedback", {"query_id": a["query_id"], "rating": -1, "comment": "no"})
        expected[a["query_id"]] = ("failure", "rated_down")
    wrong = grounded[7]
    _post(
        worker,
        "/v1/feedback",
        {"query_id": wrong["query_id"], "rating": 1, "wrong_citations": [1]},
    )
    expected[wrong["query_id"]] = ("failure", "citation_marked_wrong")
    for a in refused[:2]:  # refusals rated down stay failures (and count as refused + down)
        _post(worker, "/v1/feedback", {"query_id": a["query_id"], "rating": -1})
    return {"answers": answers, "expected": expected}


def _settings(worker: Worker) -> Settings:
    return Settings(kafka_bootstrap=worker.env["TICKERWIRE_KAFKA_BOOTSTRAP"])


def _examples(worker: Worker, ids: set[str]) -> dict[str, ExampleRecord]:
    values = run_async(lambda: read_topic(_settings(worker), EXAMPLES_TOPIC))
    return {e.query_id: e for e in latest_examples(values) if e.query_id in ids}


def _cli(worker: Worker, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [TICKERWIRE, *args],
        env={**worker.env, "TICKERWIRE_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_examples_topic_holds_exactly_the_approved_answers_and_the_failures(
    worker: Worker, rated: dict[str, Any]
) -> None:
    ids = {a["query_id"] for a in rated["answers"]}
    expected = rated["expected"]

    def joined() -> bool:
        found = _examples(worker, ids)
        return {k: (e.kind, e.reason) for k, e in found.items()} == expected

    wait_until(joined, 90, "the join agent to write the expected examples")
    found = _examples(worker, ids)
    for query_id, example in found.items():
        assert example.query.query_id == query_id
        if example.kind == "approved":
            assert example.query.grounded and example.query.citations
            assert example.feedback is not None and example.feedback.rating == 1
    assert worker.metric("tickerwire_feedback_total", rating="up") >= 6
    assert worker.metric("tickerwire_feedback_refused_rated_down_total") >= 2


def test_the_question_with_an_email_and_a_phone_number_is_logged_redacted(
    worker: Worker, rated: dict[str, Any]
) -> None:
    pii_id = next(
        a["query_id"] for q, a in zip(QUESTIONS, rated["answers"], strict=True) if PII in q
    )

    def logged() -> QueryLogRecord | None:
        for value in run_async(lambda: read_topic(_settings(worker), QUERIES_TOPIC)):
            if pii_id.encode() in value:
                return QueryLogRecord.from_bytes(value)
        return None

    wait_until(lambda: logged() is not None, 30, "the query record")
    record = logged()
    assert record is not None
    assert PII not in record.question and "555" not in record.question
    assert "[EMAIL]" in record.question and "[PHONE]" in record.question
    assert record.redactions == {"email": 1, "phone": 1}


def test_search_returns_a_query_id_that_is_logged(worker: Worker) -> None:
    data = _post(worker, "/v1/search", {"query": "Exxon Permian output"})
    query_id = data["query_id"]
    wait_until(
        lambda: any(
            query_id.encode() in v
            for v in run_async(lambda: read_topic(_settings(worker), QUERIES_TOPIC))
        ),
        30,
        "the search to be logged",
    )


def test_export_finetune_passes_the_validator_and_holds_only_approved_grounded_answers(
    worker: Worker, rated: dict[str, Any], tmp_path: Path
) -> None:
    test_examples_topic_holds_exactly_the_approved_answers_and_the_failures(worker, rated)
    out = tmp_path / "ft"
    _cli(worker, "export", "finetune", "--output", str(out))
    summary = json.loads((out / "summary.json").read_text())
    count, _, _ = token_counter(summary["model"])
    lines = []
    for name in ("train.jsonl", "validation.jsonl"):
        assert not validate_file(out / name, count, 65_536), name
        lines += [json.loads(t) for t in (out / name).read_text().splitlines()]
    assert summary["examples"] == len(lines) and summary["tokens"] > 0
    assert summary["estimated_cost_usd"] > 0
    all_examples = latest_examples(run_async(lambda: read_topic(_settings(worker), EXAMPLES_TOPIC)))
    approved = {
        (e.query.question, e.query.answer)
        for e in all_examples
        if e.kind == "approved" and e.query.grounded
    }
    pairs = set()
    for line in lines:
        roles = [m["role"] for m in line["messages"]]
        assert roles == ["system", "user", "assistant"]
        user, answer = line["messages"][1]["content"], line["messages"][2]["content"]
        question = user.rsplit("Question: ", 1)[1]
        assert (question, answer) in approved
        pairs.add((question, answer))
    ours = {
        (e.query.question, e.query.answer)
        for e in _examples(worker, set(rated["expected"])).values()
        if e.kind == "approved"
    }
    assert ours <= pairs


def test_report_gaps_groups_the_refused_and_rated_down_questions(
    worker: Worker, rated: dict[str, Any]
) -> None:
    test_examples_topic_holds_exactly_the_approved_answers_and_the_failures(worker, rated)
    groups = json.loads(_cli(worker, "report", "gaps", "--json", "--top", "1000"))
    listed = {q for g in groups for q in [g["question"], *g["similar"]]}
    found = _examples(worker, set(rated["expected"]))
    failed = {e.query.question for e in found.values() if e.reason in ("refused", "rated_down")}
    assert failed <= listed
    assert sum(g["count"] for g in groups) >= len(failed)
    assert all(g["count"] >= g["refused"] for g in groups)


def test_export_evalset_then_eval_runs_and_scores(
    worker: Worker, rated: dict[str, Any], tmp_path: Path
) -> None:
    test_examples_topic_holds_exactly_the_approved_answers_and_the_failures(worker, rated)
    data = tmp_path / "evalset"
    summary = json.loads(_cli(worker, "export", "evalset", "--output", str(data)))
    assert summary["questions"] >= 5 and summary["documents"] >= 5
    questions = [json.loads(t) for t in (data / "questions.jsonl").read_text().splitlines()]
    assert all(q["relevant_ids"] for q in questions)
    out = tmp_path / "report"
    proc = run_eval_cli(data, out, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "eval.json").read_text())
    assert report["hybrid"]["recall@10"] > 0.5, report["hybrid"]


def test_the_join_runs_alone_as_worker_feedback(
    worker: Worker, rated: dict[str, Any], tmp_path: Path
) -> None:
    """`tickerwire worker feedback` (its own consumer group) joins the same queries and feedback
    and writes the same verdicts (the examples topic is keyed by query id, so this is
    idempotent)."""
    port = free_port()
    alone = Worker(
        bootstrap=worker.env["TICKERWIRE_KAFKA_BOOTSTRAP"],
        data_dir=tmp_path / "feedback-worker",
        app_id=f"feedback-{uuid.uuid4().hex[:8]}",
        http_port=port,
        env={"TICKERWIRE_METRICS_PORT": str(port)},
        command=("worker", "feedback"),
        ready_path="/metrics",
    )
    alone.start()
    try:
        approved = sum(1 for kind, _ in rated["expected"].values() if kind == "approved")
        wait_until(
            lambda: alone.metric("tickerwire_examples_total", kind="approved") >= approved,
            90,
            "the lone join worker to write the approved examples",
        )
        assert alone.stop() == 0, alone.log_tail()
    finally:
        alone.close()
