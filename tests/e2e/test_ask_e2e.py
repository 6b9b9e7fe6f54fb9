"""/v1/ask end to end: the sample feed through the real broker and `tickerwire up` (offline).

The NVIDIA question gets a grounded answer quoting the sample 10-Q's revenue figure and citing the
10-Q; the Tesla 2019 question gets a refusal, because the feed holds only Tesla's 2026 documents
and query understanding filters on the period.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import TICKERWIRE, Worker, wait_until
from tests.kafka_support import free_port
from tickerwire.query.answer_text import REFUSAL

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[2]
NVDA_10Q = "filing:NVDA:10-Q:2026-10-25"
NVDA_Q3 = "What revenue did NVIDIA report for the third quarter of fiscal 2027?"
TESLA_2019 = "What was Tesla's revenue in 2019?"


def ask(worker: Worker, question: str, **body: Any) -> dict[str, Any]:
    resp = worker.client.post("/v1/ask", json={"question": question, **body})
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(
        bootstrap=kafka_bootstrap,
        data_dir=tmp_path_factory.mktemp("ask-worker"),
        app_id=f"ask-{uuid.uuid4().hex[:8]}",
        http_port=free_port(),
    )
    w.start()
    try:
        subprocess.run(
            [TICKERWIRE, "produce", str(REPO / "deploy" / "sample")],
            env={**os.environ, "TICKERWIRE_KAFKA_BOOTSTRAP": kafka_bootstrap},
            check=True,
            capture_output=True,
            timeout=300,
        )
        wait_until(
            lambda: (
                w.document_ids(NVDA_10Q) is not None
                and w.search(TESLA_2019, understand=False)["hits"] != []
            ),
            300,
            "the sample feed to be indexed",
        )
        wait_until(
            lambda: w.search(TESLA_2019)["understood"] is not None,
            60,
            "the registry to learn Tesla from the entities topic",
        )
        yield w
    finally:
        w.close()


def test_nvidia_question_gets_the_10q_revenue_figure_cited(worker: Worker) -> None:
    data = ask(worker, NVDA_Q3)
    assert data["grounded"] is True, data
    assert "$68.4 billion" in data["answer"] or "$68,400" in data["answer"], data["answer"]
    by_n = {c["n"]: c for c in data["citations"]}
    # the sentence quoting the figure cites the 10-Q
    for sentence in data["answer"].split("] "):
        if "$68.4 billion" in sentence or "$68,400" in sentence:
            n = int(sentence.rsplit("[", 1)[1].rstrip("]").split(",")[0])
            assert by_n[n]["doc_id"] == NVDA_10Q
            break
    else:
        raise AssertionError(data["answer"])
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
