"""Retrieval metrics and the dataset mapping of ``tickerwire eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickerwire.core.errors import ConfigError
from tickerwire.evaluation import (
    METRICS,
    EvalResult,
    corpus_documents,
    dedupe,
    load_dataset,
    mean_scores,
    score,
    write_report,
)


def test_score_of_a_ranking() -> None:
    s = score(["a", "b", "c"], frozenset({"b", "z"}))
    assert s["hit@1"] == 0.0
    assert s["hit@5"] == s["hit@10"] == 1.0
    assert s["recall@10"] == 0.5
    assert s["mrr@10"] == 0.5
    assert s["ndcg@10"] == pytest.approx((1 / 1.5849625) / (1 + 1 / 1.5849625), rel=1e-6)


def test_a_miss_scores_zero_and_means_average() -> None:
    miss = score(["x"] * 10, frozenset({"a"}))
    assert set(miss.values()) == {0.0}
    hit = score(["a"], frozenset({"a"}))
    assert mean_scores([miss, hit])["hit@1"] == 0.5


def test_dedupe_keeps_first_occurrence() -> None:
    assert dedupe(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_dataset_loading_and_documents(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"id": "p1", "title": "T", "text": "Revenue | 1,234.5"}) + "\n", "utf-8"
    )
    (tmp_path / "questions.jsonl").write_text(
        json.dumps({"id": "q1", "question": "revenue?", "relevant_ids": ["p1"]})
        + "\n"
        + json.dumps({"id": "q2", "question": "none", "relevant_ids": []})
        + "\n",
        "utf-8",
    )
    data = load_dataset(tmp_path)
    assert [q.id for q in data.questions] == ["q1"]
    docs = corpus_documents(data.corpus, titles=False)
    assert docs[0]["doc_id"] == "p1" and docs[0]["title"] == "" and docs[0]["op"] == "upsert"
    assert corpus_documents(data.corpus, titles=True)[0]["title"] == "T"


def test_missing_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"corpus\.jsonl"):
        load_dataset(tmp_path)


def test_report_has_json_per_mode_and_a_png(tmp_path: Path) -> None:
    metrics = dict.fromkeys(METRICS, 0.5)
    write_report(
        EvalResult({"dense": metrics, "sparse": metrics, "hybrid": metrics}, {"questions": 1}),
        tmp_path,
    )
    data = json.loads((tmp_path / "eval.json").read_text("utf-8"))
    assert set(data) >= {"dense", "sparse", "hybrid"}
    assert set(data["hybrid"]) == set(METRICS)
    assert (tmp_path / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
