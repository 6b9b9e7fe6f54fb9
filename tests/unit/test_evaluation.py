"""Retrieval metrics and the dataset mapping of ``tickerwire eval``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tickerwire.core.errors import ConfigError
from tickerwire.core.records import RawDocument
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
from tickerwire.produce.readers import Accepted, Source, read_jsonl


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


FILING_ROW = {
    "id": "3M_2018_10K_p060",
    "title": "3M 10-K FY2018, page 60",
    "text": "Capital expenditures were 1,577 million.",
    "tickers": ["MMM"],
    "company": "3M",
    "doc_type": "filing",
    "published_at": "2019-02-07T00:00:00Z",
    "metadata": {"form": "10-K", "fiscal_period": "FY2018", "page": 60},
}


def test_corpus_row_metadata_reaches_the_raw_document() -> None:
    (doc,) = corpus_documents([FILING_ROW], titles=True)
    raw = RawDocument.model_validate(doc)
    assert raw.tickers == ("MMM",)
    assert raw.doc_type == "filing"
    assert doc["published_at"] == "2019-02-07T00:00:00Z"
    assert raw.metadata == {"form": "10-K", "fiscal_period": "FY2018", "page": 60, "company": "3M"}
    assert raw.title == "3M 10-K FY2018, page 60"


def test_corpus_row_gives_the_document_a_jsonl_producer_would_send(tmp_path: Path) -> None:
    (doc,) = corpus_documents([FILING_ROW], titles=True)
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(doc) + "\n", "utf-8")
    (read,) = read_jsonl(Source(path, "feed.jsonl", tmp_path), max_body_bytes=1 << 20)
    assert isinstance(read, Accepted)
    assert read.document == RawDocument.model_validate(doc)


def test_metadata_company_wins_over_the_row_company() -> None:
    row = {**FILING_ROW, "metadata": {"company": "3M Company"}}
    assert corpus_documents([row], titles=False)[0]["metadata"] == {"company": "3M Company"}


def test_a_row_without_metadata_keeps_the_eval_defaults() -> None:
    (doc,) = corpus_documents([{"id": "p1", "text": "x"}], titles=True)
    assert doc["tickers"] == [] and doc["metadata"] == {} and doc["doc_type"] == "filing"
    assert doc["published_at"] == "2020-01-01T00:00:00Z" and doc["title"] == ""


def test_a_dataset_doc_type_outside_the_schema_is_kept_in_metadata() -> None:
    row = {"id": "t1", "text": "x", "doc_type": "annual_report_table"}
    (doc,) = corpus_documents([row], titles=False)
    assert doc["doc_type"] == "filing"
    assert doc["metadata"] == {"dataset_doc_type": "annual_report_table"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tickers": ["mmm"]}, r"corpus row 1 \(3M_2018_10K_p060\).*tickers"),
        ({"published_at": "last tuesday"}, r"corpus row 1 .*published_at"),
        ({"metadata": ["form"]}, r"metadata must be an object"),
        ({"text": "x" * 100}, r"corpus row 1 .*over the limit of 10"),
    ],
)
def test_a_row_a_producer_would_refuse_is_a_clear_error(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason):
        corpus_documents([{**FILING_ROW, **change}], titles=False, max_body_bytes=10)


def test_a_corpus_line_that_is_not_json_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "text": "x"}\n{oops\n', "utf-8")
    (tmp_path / "questions.jsonl").write_text("", "utf-8")
    with pytest.raises(ConfigError, match=r"corpus\.jsonl:2: not JSON"):
        load_dataset(tmp_path)


def test_report_without_matplotlib_writes_the_json_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    metrics = dict.fromkeys(METRICS, 0.5)
    files = write_report(EvalResult({"dense": metrics}, {"questions": 1}), tmp_path)
    assert files == [tmp_path / "eval.json"]
    assert not (tmp_path / "eval.png").exists()


def test_the_worker_and_eval_do_not_import_matplotlib() -> None:
    code = (
        "import sys, tickerwire.evaluation, tickerwire.runtime, tickerwire.cli; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
