"""Query understanding end to end: the sample feed through the real broker and ``tickerwire up``.

The worker learns company names from the streamed documents (the entities topic), so a question
about Tesla in 2019 finds no evidence (the feed holds only Tesla's 2026 documents) and one about
NVIDIA's third quarter of fiscal 2027 finds the NVIDIA 10-Q first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[2]
NVDA_10Q = "filing:NVDA:10-Q:2026-10-25"
TESLA_2019 = "What was Tesla's revenue in 2019?"
NVDA_Q3 = "What revenue did NVIDIA report for the third quarter of fiscal 2027?"


@pytest.fixture(scope="module")
def worker(sample_feed_worker: Worker) -> Worker:
    return sample_feed_worker


def test_a_period_the_index_has_no_evidence_for_finds_nothing(worker: Worker) -> None:
    body = worker.search(TESLA_2019)
    assert body["hits"] == []
    assert body["understood"]["tickers"] == ["TSLA"]
    assert body["understood"]["periods"] == ["2019"]
    assert body["understood"]["applied_as"] == "filter"


def test_understand_false_searches_the_question_as_written(worker: Worker) -> None:
    body = worker.search(TESLA_2019, understand=False)
    assert body["understood"] is None
    assert body["hits"]  # the 2026 Tesla documents are there; only understanding removed them


def test_the_fiscal_quarter_question_finds_the_10q_first(worker: Worker) -> None:
    body = worker.search(NVDA_Q3)
    assert body["hits"][0]["doc_id"] == NVDA_10Q
    assert body["understood"]["tickers"] == ["NVDA"]
    assert body["understood"]["periods"] == ["2027Q3"]
    assert all("NVDA" in hit["tickers"] for hit in body["hits"])


def test_a_question_naming_nothing_is_answered_as_before(worker: Worker) -> None:
    on = worker.search("Where did the Fed set rates?", k=5)
    off = worker.search("Where did the Fed set rates?", k=5, understand=False)
    assert on["understood"] is None
    assert [h["chunk_id"] for h in on["hits"]] == [h["chunk_id"] for h in off["hits"]]
