"""Retrieval metrics of one ranking, and their means over a question set (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from tickerwire.core.ports import SearchMode

MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")
METRICS = ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10")


def dedupe(doc_ids: Iterable[str]) -> list[str]:
    """Document ids in first-seen order (several chunks of one document count once)."""
    seen: set[str] = set()
    out: list[str] = []
    for d in doc_ids:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def score(ranked: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    """hit@1/5/10, recall@10, MRR@10 and nDCG@10 (binary relevance) of one ranking."""
    top = list(ranked[:10])
    hits = [d in relevant for d in top]
    first = next((i for i, h in enumerate(hits) if h), None)
    dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits) if h)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {
        "hit@1": float(any(hits[:1])),
        "hit@5": float(any(hits[:5])),
        "hit@10": float(any(hits)),
        "recall@10": sum(hits) / len(relevant),
        "mrr@10": 1.0 / (first + 1) if first is not None else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over all questions, rounded to 4 places."""
    if not rows:
        return dict.fromkeys(METRICS, 0.0)
    return {m: round(sum(r[m] for r in rows) / len(rows), 4) for m in METRICS}
