"""/v1/ask end to end: the sample feed through the real broker and `tickerwire up` (offline).

The NVIDIA question gets a grounded answer quoting the sample 10-Q's revenue figure and citing the
10-Q; the Tesla 2019 question gets a refusal, because the feed holds only Tesla's 2026 documents
and query understanding filters on the period.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.support import Worker
from tickerwire.query.answer_text import REFUSAL

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

NVDA_10Q = "filing:NVDA:10-Q:2026-10-25"
NVDA_Q3 = "What revenue did NVIDIA report for the third quarter of fiscal 2027?"
TESLA_2019 = "What was Tesla's revenue in 2019?"


def ask(worker: Worker, question: str, **body: Any) -> dict[str, Any]:
    resp = worker.client.post("/v1/ask", json={"question": question, **body})
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


@pytest.fixture(scope="module")
def worker(sample_feed_worker: Worker) -> Worker:
    return sample_feed_worker


def test_nvidia_question_gets_the_10q_revenue_figure_cited(worker: Worker) -> None:
    data = ask(worker, NVDA_Q3)
    assert data["grounded"] is True, data
    assert "$68.4 billion" in data["answer"] or "$68,400" in data["answer"], data["answer"]
    tenq = [c["n"] for c in data["citations"] if c["doc_id"] == NVDA_10Q]
    assert tenq, data
    # a sentence quoting the figure cites the 10-Q
    cited_sentences = [
        sentence
        for sentence in data["answer"].split("] ")
        if "[" in sentence
        and tenq[0] in {int(n) for n in sentence.rsplit("[", 1)[1].rstrip("]").split(",")}
    ]
    assert any("$68.4 billion" in s or "$68,400" in s for s in cited_sentences), data["answer"]
    assert data["understood"]["periods"] == ["2027Q3"]


def test_tesla_2019_is_refused(worker: Worker) -> None:
    data = ask(worker, TESLA_2019)
    assert data["grounded"] is False, data
    assert data["answer"] == REFUSAL
    assert data["citations"] == []


def test_the_answer_streams_over_http(worker: Worker) -> None:
    with worker.client.stream(
        "POST",
        "/v1/ask",
        json={"question": NVDA_Q3},
        headers={"Accept": "text/event-stream"},
    ) as resp:
        assert resp.status_code == 200
        text = "".join(resp.iter_text())
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    assert events[0][0] == "meta" and events[-1][0] == "final"
    final = events[-1][1]
    assert "".join(d["text"] for e, d in events if e == "token") == final["answer"]
    assert final["grounded"] is True


def test_ask_metrics_are_exported(worker: Worker) -> None:
    ask(worker, NVDA_Q3)
    assert worker.metric("tickerwire_query_requests_total", endpoint="/v1/ask", status="200") >= 1
    assert worker.metric("tickerwire_query_top_score_count", endpoint="/v1/ask") >= 1
    assert worker.metric("tickerwire_ask_refused_total") >= 1
