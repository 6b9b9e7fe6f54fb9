"""Sparse-only retrieval quality on shared/data/tatqa, scored in memory exactly as Qdrant would.

Documents get ``BM25Encoder.encode_document`` vectors; a query's score for a document is
``sum over unique query terms of idf(t) * doc_value(t)`` with Qdrant's IDF modifier
``idf(t) = ln((N - n_t + 0.5) / (n_t + 0.5) + 1)``. Reports hit@1/5/10, recall@10, MRR@10 and
nDCG@10 for a few tokenizer variants, prints a table and writes bench/results/sparse.json.

    .venv/bin/python bench/sparse_eval.py [--data ../shared/data/tatqa] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tickerwire.pipeline.sparse import STOPWORDS, BM25Encoder, BM25Params, light_stem

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "tatqa"


@dataclass(frozen=True)
class Variant:
    name: str
    make: Callable[[float], BM25Encoder]  # avgdl -> encoder
    title: bool = False
    fixed_avgdl: float | None = None


def load(data: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def read(name: str) -> list[dict[str, Any]]:
        with (data / name).open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    return read("corpus.jsonl"), read("questions.jsonl")


def evaluate(
    encoder: BM25Encoder,
    corpus: list[dict[str, Any]],
    questions: list[dict[str, Any]],
    *,
    title: bool,
) -> dict[str, float]:
    texts = [(f"{d['title']}\n{d['text']}" if title else d["text"]) for d in corpus]
    postings: dict[int, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for doc, text in enumerate(texts):
        vec = encoder.encode_document(text)
        for index, value in zip(vec.indices, vec.values, strict=True):
            docs, values = postings[index]
            docs.append(doc)
            values.append(value)
    n_docs = len(texts)
    arrays = {
        index: (
            np.asarray(docs, dtype=np.int64),
            np.asarray(values, dtype=np.float64)
            * math.log((n_docs - len(docs) + 0.5) / (len(docs) + 0.5) + 1.0),
        )
        for index, (docs, values) in postings.items()
    }
    ids = [d["id"] for d in corpus]
    sums = {"hit@1": 0.0, "hit@5": 0.0, "hit@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
    sums["ndcg@10"] = 0.0
    for q in questions:
        relevant = set(q["relevant_ids"])
        scores = np.zeros(n_docs)
        for index in encoder.encode_query(q["question"]).indices:
            hit = arrays.get(index)
            if hit is not None:
                scores[hit[0]] += hit[1]
        top = np.argsort(-scores, kind="stable")[:10]
        ranked = [ids[i] for i in top if scores[i] > 0]
        flags = [doc_id in relevant for doc_id in ranked]
        sums["hit@1"] += any(flags[:1])
        sums["hit@5"] += any(flags[:5])
        sums["hit@10"] += any(flags[:10])
        sums["recall@10"] += sum(flags) / len(relevant)
        first = next((rank for rank, ok in enumerate(flags, 1) if ok), None)
        sums["mrr@10"] += 1.0 / first if first else 0.0
        dcg = sum(1.0 / math.log2(rank + 1) for rank, ok in enumerate(flags, 1) if ok)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), 10) + 1))
        sums["ndcg@10"] += dcg / ideal
    return {k: round(v / len(questions), 4) for k, v in sums.items()}


def avg_terms(encoder: BM25Encoder, corpus: list[dict[str, Any]]) -> float:
    return sum(len(encoder.tokenize(d["text"])) for d in corpus) / len(corpus)


def variants(quick: bool) -> list[Variant]:
    def enc(**kw: Any) -> Callable[[float], BM25Encoder]:
        k1 = kw.pop("k1", 0.9)
        b = kw.pop("b", 0.4)
        return lambda avgdl: BM25Encoder(BM25Params(k1=k1, b=b, avgdl=avgdl), **kw)

    default = Variant("default (k1=0.9 b=0.4, no stem, compounds split)", enc())
    if quick:
        return [default]
    return [
        default,
        Variant("default, fixed avgdl=64 (production default)", enc(), fixed_avgdl=64.0),
        Variant("default + title prefix", enc(), title=True),
        Variant("light plural stemming", enc(stemmer=light_stem)),
        Variant("compounds kept whole", enc(split_compounds=False)),
        Variant("no stopwords", enc(stopwords=())),
        Variant("k1=1.5 b=0.75 (bm25s default)", enc(k1=1.5, b=0.75)),
        Variant("k1=1.2 b=0.75 (Lucene default)", enc(k1=1.2, b=0.75)),
        Variant("k1=0.7 b=0.4", enc(k1=0.7)),
        Variant("k1=0.9 b=0.6", enc(b=0.6)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "sparse.json")
    parser.add_argument("--quick", action="store_true", help="only the default encoder")
    args = parser.parse_args(argv)
    corpus, questions = load(args.data)
    print(f"tatqa: {len(corpus)} passages, {len(questions)} questions; bar: hit@10 >= 0.704")
    header = f"{'variant':56} {'avgdl':>6} " + " ".join(
        f"{m:>9}" for m in ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10")
    )
    print(header)
    results: list[dict[str, Any]] = []
    for variant in variants(args.quick):
        probe = variant.make(64.0)
        avgdl = variant.fixed_avgdl or avg_terms(probe, corpus)
        started = time.perf_counter()
        metrics = evaluate(variant.make(avgdl), corpus, questions, title=variant.title)
        seconds = time.perf_counter() - started
        results.append(
            {"variant": variant.name, "avgdl": round(avgdl, 1), "seconds": round(seconds, 2)}
            | metrics
        )
        print(
            f"{variant.name:56} {avgdl:6.1f} " + " ".join(f"{metrics[m]:9.3f}" for m in metrics),
            flush=True,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "dataset": str(args.data),
        "stopwords": len(STOPWORDS),
        "default_stemmer": None,
        "results": results,
    }
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    ok = results[0]["hit@10"] >= 0.704
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
