"""Retrieval evaluation: stream a QA corpus through the real pipeline, then score the questions.

``tickerwire eval --dataset DIR --output DIR`` runs :func:`run_eval`. The dataset has the shape of
``shared/data/financebench-dev``: ``corpus.jsonl`` (``id``, ``title``, ``text``, and optionally
``tickers``, ``company``, ``doc_type``, ``published_at``, ``metadata``) and ``questions.jsonl``
(``id``, ``question``, ``relevant_ids``). The corpus goes through Kafka, the preprocess, embed and
index stages of a real ``tickerwire up`` process into a fresh collection; the questions are then
asked through the same search use case the API serves, in each mode.

Rooms: :mod:`.dataset` (loading, corpus rows to raw documents), :mod:`.metrics` (pure scoring),
:mod:`.worker` (the ``tickerwire up`` child process), :mod:`.run` (the whole run) and
:mod:`.report` (JSON, console table, and the chart, which needs the optional ``plot`` extra).
"""

from __future__ import annotations

from tickerwire.evaluation.dataset import (
    EVAL_PUBLISHED_AT,
    Dataset,
    Question,
    corpus_documents,
    load_dataset,
)
from tickerwire.evaluation.metrics import METRICS, MODES, dedupe, mean_scores, score
from tickerwire.evaluation.report import EvalResult, print_table, write_chart, write_report
from tickerwire.evaluation.run import run_eval
from tickerwire.evaluation.worker import WorkerProcess

__all__ = [
    "EVAL_PUBLISHED_AT",
    "METRICS",
    "MODES",
    "Dataset",
    "EvalResult",
    "Question",
    "WorkerProcess",
    "corpus_documents",
    "dedupe",
    "load_dataset",
    "mean_scores",
    "print_table",
    "run_eval",
    "score",
    "write_chart",
    "write_report",
]
