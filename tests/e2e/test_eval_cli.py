"""``tickerwire eval`` on a tiny dataset, through the real pipeline process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.stream_support import run_eval_cli
from tests.kafka_support import run_async
from tickerwire.core.ports import ScoredHit
from tickerwire.core.settings import load_settings
from tickerwire.runtime import open_resources

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PASSAGES = {
    "p-oil": "Zephyrion Energy raised its crude oil output guidance to 410,000 barrels per day.",
    "p-chip": "Quorvatek Semiconductor reported wafer revenue of 2,345.6 million, up 18%.",
    "p-bank": "Halvermont Bank lifted its quarterly dividend to 1.35 per share.",
    "p-retail": "Brindlewood Retail opened 42 new stores and cut inventory by 7%.",
}
#: What a filings producer would send with one passage (issue 11 item 1).
PRODUCER_FIELDS = {
    "p-chip": {
        "tickers": ["QRVK"],
        "company": "Quorvatek Semiconductor",
        "doc_type": "news",
        "published_at": "2024-05-02T13:30:00Z",
        "metadata": {"fiscal_period": "2024Q1"},
    }
}
QUESTIONS = {
    "q1": ("What oil output guidance did Zephyrion Energy give?", "p-oil"),
    "q2": ("How much wafer revenue did Quorvatek report?", "p-chip"),
    "q3": ("What is Halvermont Bank's quarterly dividend?", "p-bank"),
    "q4": ("How many stores did Brindlewood Retail open?", "p-retail"),
}


def test_eval_writes_metrics_per_mode_and_a_chart(tmp_path: Path) -> None:
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"id": k, "title": k, "text": v, **PRODUCER_FIELDS.get(k, {})}) + "\n"
            for k, v in PASSAGES.items()
        )
    )
    (data / "questions.jsonl").write_text(
        "".join(
            json.dumps({"id": k, "question": q, "relevant_ids": [rel]}) + "\n"
            for k, (q, rel) in QUESTIONS.items()
        )
    )
    out = tmp_path / "report"
    proc = run_eval_cli(data, out, tmp_path, "--work-dir", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval.json").read_text())
    for mode in ("dense", "sparse", "hybrid"):
        assert set(report[mode]) == {"hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10"}
    assert report["sparse"]["hit@1"] == 1.0
    assert report["hybrid"]["hit@10"] == 1.0
    assert (out / "eval.png").stat().st_size > 1000

    # The corpus rows' producer fields reached the index as a producer's document would.
    settings = load_settings(
        data_dir=tmp_path / "work" / "data", collection=report["_run"]["collection"]
    )

    async def chunks_of(doc_id: str) -> list[ScoredHit]:
        res = await open_resources(settings, with_index=True)
        try:
            assert res.index is not None
            return await res.index.get_document(doc_id)
        finally:
            await res.aclose()

    chip = run_async(lambda: chunks_of("p-chip"))
    assert chip, "p-chip is not in the evaluation index"
    payload = chip[0].payload
    assert payload["tickers"] == ["QRVK"]
    assert payload["doc_type"] == "news"
    assert payload["published_at"].startswith("2024-05-02T13:30:00")
    oil = run_async(lambda: chunks_of("p-oil"))[0].payload
    assert oil["tickers"] == [] and oil["doc_type"] == "filing"
