"""Answer evaluation scoring: normalized numbers, multi-span answers, run counts."""

from __future__ import annotations

from typing import Any

import pytest

from tickerwire.evaluation.answers import (
    AnswerRun,
    answer_contains,
    evidence_documents,
    normalize_number,
    scores,
)
from tickerwire.evaluation.dataset import Question


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("$1,577", "1577"),
        ("1577.00", "1577"),
        ("$ 1,452.4", "1452.4"),
        ("(3.5)", "-3.5"),
        ("0.0", "0"),
    ],
)
def test_numbers_normalize(text: str, number: str) -> None:
    assert normalize_number(text) == number


@pytest.mark.parametrize(
    ("answer", "gold", "found"),
    [
        ("Capital expenditure was $1,577 million [1].", "$1577.00", True),
        ("Capital expenditure was $1,578 million [1].", "$1577.00", False),
        ("Fixed Price: $ 1,452.4 (2019) [2].", "1452.4", True),
        ("Margin rose to 14.5% [1].", "14.5%", True),
        ("Paid allowable incurred costs plus a profit [1].", "allowable incurred  costs", True),
        ("2019 and 2018 [1].", ["2019", "2018"], True),
        ("2019 only [1].", ["2019", "2018"], False),
        ("Anything.", "", False),
    ],
)
def test_gold_answers_are_found_with_numbers_normalized(
    answer: str, gold: Any, found: bool
) -> None:
    assert answer_contains(answer, gold) is found


def test_evidence_documents_include_the_relevant_passages_whole_context() -> None:
    corpus = [
        {"id": "c1-table", "doc_name": "c1"},
        {"id": "c1-p1", "doc_name": "c1"},
        {"id": "c2-p1", "doc_name": "c2"},
        {"id": "page-7"},
    ]
    qs = [Question("q1", "?", frozenset({"c1-p1"})), Question("q2", "?", frozenset({"page-7"}))]
    assert evidence_documents(qs, corpus) == {"c1-table", "c1-p1", "page-7"}


def test_scores_count_recall_precision_and_refusals() -> None:
    present, absent = AnswerRun(), AnswerRun()
    cite = {"chunk_id": "a"}
    present.add({"grounded": True, "answer": "It was $5 [1].", "citations": [cite]}, "5.00", {"a"})
    present.add({"grounded": False, "answer": "Not enough", "citations": []}, "7", {"a"})
    absent.add({"grounded": False, "answer": "Not enough", "citations": []}, "5", set())
    absent.add({"grounded": False, "answer": "Not enough", "citations": []}, "7", set())
    out = scores(present, absent)
    assert out["answer_recall"] == 0.5
    assert out["citation_precision"] == 1.0
    assert out["refusal_rate_evidence_present"] == 0.5
    assert out["refusal_rate_evidence_absent"] == 1.0
