"""Calibrate the refusal threshold of /v1/ask on data (docs/answers.md explains the method).

For a seeded sample of dev-set questions, two Edge indexes are built in-process (the pipeline's own
cleaning, chunking, local embedder and BM25 encoder; vectors written straight into the index):

- ``with``: the questions' evidence passages plus random distractor passages;
- ``without``: the same distractors only (the evidence removed; for TAT-QA the question's whole
  context, whose table and paragraphs restate the same numbers).

Every question is asked of both, through the real SearchService (hybrid, k=5) and the
AskService's unit scoring. Three candidate scores are recorded per question: the evidence score
(best question-to-sentence/row cosine, what /v1/ask uses), the dense cosine of the top dense hit,
and the top hybrid RRF score. The threshold maximizes balanced accuracy between "answer" on the
``with`` index (where retrieval found the evidence in the top 5) and "refuse" on the ``without``
index, pooled over both datasets. Writes ``bench/results/refusal_calibration.json``.

Usage: ``python bench/refusal_calibration.py [--questions 120] [--distractors 300]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import log, write_json
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.core.ports import Embedder, Point, SearchFilters
from tickerwire.core.records import RawDocument
from tickerwire.core.settings import Settings
from tickerwire.evaluation import corpus_documents
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.query.answer_text import evidence_score
from tickerwire.query.ask import AskService, OfflineAnswerer
from tickerwire.query.search import SearchService
from tickerwire.runtime import chunker_for
from tickerwire.stages.preprocess import prepare

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SCORES = ("evidence", "dense_top", "rrf_top")
K = 5


@dataclass
class Sample:
    """Questions, the passages that hold their evidence, and distractors."""

    name: str
    questions: list[dict[str, Any]]
    evidence: dict[str, set[str]]  # question id -> passage ids removed in the "without" index
    rows_with: list[dict[str, Any]]
    rows_without: list[dict[str, Any]]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def sample_dataset(name: str, questions: int, distractors: int, seed: int) -> Sample:
    """A seeded sample; TAT-QA's evidence is the question's whole context."""
    rng = random.Random(seed)
    corpus = _jsonl(DATA / name / "corpus.jsonl")
    qs = [q for q in _jsonl(DATA / name / "questions.jsonl") if q.get("relevant_ids")]
    if name == "tatqa":  # one question per context keeps the sample diverse
        by_context: dict[str, dict[str, Any]] = {}
        for q in rng.sample(qs, len(qs)):
            by_context.setdefault(q["context_id"], q)
        qs = list(by_context.values())
    chosen = rng.sample(qs, min(questions, len(qs)))
    evidence: dict[str, set[str]] = {}
    for q in chosen:
        ids = set(q["relevant_ids"])
        if name == "tatqa":
            ids |= {row["id"] for row in corpus if row.get("doc_name") == q["context_id"]}
        evidence[q["id"]] = ids
    removed = set().union(*evidence.values())
    pool = [row for row in corpus if row["id"] not in removed]
    noise = rng.sample(pool, min(distractors, len(pool)))
    with_rows = [row for row in corpus if row["id"] in removed] + noise
    return Sample(name, chosen, evidence, with_rows, noise)


async def build_index(
    path: Path, rows: Sequence[dict[str, Any]], embedder: Embedder, sparse: BM25Encoder
) -> EdgeIndex:
    """An Edge index of ``rows``, chunked and embedded as the pipeline does it."""
    chunker = chunker_for(Settings(), embedder)
    index = EdgeIndex(path)
    await index.ensure_collection(embedder.dim)
    points: list[Point] = []
    for raw in corpus_documents(rows, titles=True):
        doc = RawDocument.model_validate(raw)
        prepared = await asyncio.to_thread(prepare, doc, chunker)
        published = doc.published_at or datetime(2020, 1, 1, tzinfo=UTC)
        texts = [c.embed_text for c in prepared.chunks]
        vectors = await embedder.embed_documents(texts)
        for chunk, vector in zip(prepared.chunks, vectors, strict=True):
            points.append(
                Point(
                    id=str(chunk.chunk_id),
                    dense=vector,
                    sparse=sparse.encode_document(chunk.embed_text),
                    payload={
                        "doc_id": doc.doc_id,
                        "chunk_id": str(chunk.chunk_id),
                        "chunk_index": chunk.index,
                        "text": chunk.text,
                        "title": doc.title,
                        "published_at": published.isoformat(),
                        "published_ts": published.timestamp(),
                        "indexed_ts": time.time(),
                        "tickers": [],
                        "doc_type": "filing",
                        "source": "eval",
                        "version": 1,
                    },
                )
            )
    for start in range(0, len(points), 512):
        await index.upsert(points[start : start + 512])
    return index


async def measure(
    sample: Sample, index: EdgeIndex, embedder: Embedder, sparse: BM25Encoder
) -> list[dict[str, Any]]:
    """The three candidate scores of every question against ``index``."""
    search = SearchService(
        embedder=embedder, sparse=sparse, index=index, hybrid=Settings().hybrid_params()
    )
    ask = AskService(search=search, model=OfflineAnswerer(), min_evidence=0.0)
    out = []
    for q in sample.questions:
        hits = (await search.search(q["question"], k=K, filters=SearchFilters())).hits
        dense = (await search.search(q["question"], k=1, mode="dense")).hits
        passages = await ask.passages(q["question"], hits)
        out.append(
            {
                "id": q["id"],
                "found": bool({h.payload["doc_id"] for h in hits} & set(q["relevant_ids"])),
                "evidence": evidence_score(passages) or 0.0,
                "dense_top": dense[0].score if dense else 0.0,
                "rrf_top": hits[0].score if hits else 0.0,
            }
        )
    return out


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def best_threshold(pos: Sequence[float], neg: Sequence[float]) -> tuple[float, float]:
    """The threshold (answer when score >= t) with the best balanced accuracy, and that accuracy."""
    best = (0.0, 0.0)
    for t in sorted(set(pos) | set(neg)):
        tpr = sum(p >= t for p in pos) / len(pos)
        tnr = sum(n < t for n in neg) / len(neg)
        if (tpr + tnr) / 2 > best[1]:
            best = (t, (tpr + tnr) / 2)
    return best


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=120, help="per dataset (tatqa)")
    ap.add_argument("--distractors", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    settings = Settings()
    embedder = open_embedder(settings)
    sparse = BM25Encoder()
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    started = time.perf_counter()
    try:
        for name, count in (("tatqa", args.questions), ("financebench-dev", args.questions)):
            sample = sample_dataset(name, count, args.distractors, args.seed)
            rows[name] = {}
            for variant, corpus in (("with", sample.rows_with), ("without", sample.rows_without)):
                with tempfile.TemporaryDirectory() as tmp:
                    log(f"{name}/{variant}: indexing {len(corpus)} passages")
                    index = await build_index(Path(tmp) / "edge", corpus, embedder, sparse)
                    try:
                        log(f"{name}/{variant}: asking {len(sample.questions)} questions")
                        rows[name][variant] = await measure(sample, index, embedder, sparse)
                    finally:
                        await index.aclose()
    finally:
        await embedder.aclose()

    report: dict[str, Any] = {
        "method": "balanced accuracy: answer on 'with' where evidence is in the top 5, refuse on "
        "'without'; pooled over datasets",
        "k": K,
        "questions": {n: len(r["with"]) for n, r in rows.items()},
        "distractors": args.distractors,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "scores": {},
    }
    for score in SCORES:
        pos = [r[score] for n in rows for r in rows[n]["with"] if r["found"]]
        neg = [r[score] for n in rows for r in rows[n]["without"]]
        threshold, balanced = best_threshold(pos, neg)
        entry: dict[str, Any] = {
            "auc": round(auc(pos, neg), 4),
            "threshold": round(threshold, 4),
            "balanced_accuracy": round(balanced, 4),
            "datasets": {},
        }
        for n in rows:
            with_rows, without = rows[n]["with"], rows[n]["without"]
            found = [r for r in with_rows if r["found"]]
            entry["datasets"][n] = {
                "auc": round(auc([r[score] for r in found], [r[score] for r in without]), 4),
                "evidence_found_top5": round(len(found) / len(with_rows), 4),
                "refusal_rate_evidence_present": round(
                    sum(r[score] < threshold for r in with_rows) / len(with_rows), 4
                ),
                "refusal_rate_evidence_found": round(
                    sum(r[score] < threshold for r in found) / max(1, len(found)), 4
                ),
                "refusal_rate_evidence_absent": round(
                    sum(r[score] < threshold for r in without) / len(without), 4
                ),
                "median_with": round(sorted(r[score] for r in found)[len(found) // 2], 4)
                if found
                else None,
                "median_without": round(sorted(r[score] for r in without)[len(without) // 2], 4),
            }
        report["scores"][score] = entry
    path = write_json("refusal_calibration", report)
    print(json.dumps(report["scores"], indent=2))
    log(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
