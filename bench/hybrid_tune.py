"""Sweep the weighted-RRF parameters of hybrid search on an evaluation index.

Usage: run ``tickerwire eval --dataset DIR --output OUT --work-dir WORK`` once, then
``python bench/hybrid_tune.py --dataset DIR --work-dir WORK --collection NAME``. Dense and sparse
top-100 lists are fetched once per question; fusion is the weighted RRF Qdrant applies
(sum of w / (k + rank), rank from 1), so every setting is scored on the same candidates.
Prints a table and writes ``bench/results/hybrid_tune.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from tickerwire.core.ports import SearchFilters
from tickerwire.core.settings import Settings
from tickerwire.evaluation import dedupe, load_dataset, mean_scores, score
from tickerwire.runtime import open_resources

WEIGHTS = [(1.0, 1.0), (1.0, 1.5), (1.0, 2.0), (1.0, 3.0), (1.0, 4.0), (1.0, 6.0), (0.0, 1.0)]
KS = [2, 10, 60]


def fuse(dense: list[str], sparse: list[str], wd: float, ws: float, k: int) -> list[str]:
    scores: dict[str, float] = {}
    for w, ranking in ((wd, dense), (ws, sparse)):
        for rank, pid in enumerate(ranking, start=1):
            scores[pid] = scores.get(pid, 0.0) + w / (k + rank)
    return sorted(scores, key=lambda p: -scores[p])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--collection", required=True)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    data = load_dataset(args.dataset, limit=args.limit)
    settings = Settings(data_dir=args.work_dir / "data", collection=args.collection)
    res = await open_resources(settings, with_index=True)
    assert res.index is not None
    lists: list[tuple[list[str], list[str]]] = []
    try:
        for q in data.questions:
            dense_q = await res.embedder.embed_query(q.text)
            sparse_q = res.sparse.encode_query(q.text)
            got = []
            for mode in ("dense", "sparse"):
                hits = await res.index.search(
                    dense=dense_q if mode == "dense" else None,
                    sparse=sparse_q if mode == "sparse" else None,
                    mode=mode,  # type: ignore[arg-type]
                    filters=SearchFilters(),
                    limit=100,
                    hybrid=settings.hybrid_params(),
                )
                got.append(dedupe(str(h.payload["doc_id"]) for h in hits))
            lists.append((got[0], got[1]))
    finally:
        await res.aclose()
    rows = []
    for k in KS:
        for wd, ws in WEIGHTS:
            scored = [
                score(fuse(d, s, wd, ws, k), q.relevant)
                for (d, s), q in zip(lists, data.questions, strict=True)
            ]
            rows.append({"k": k, "dense_weight": wd, "sparse_weight": ws, **mean_scores(scored)})
    rows.sort(key=lambda r: -r["ndcg@10"])
    print(f"{'k':>3} {'wd':>4} {'ws':>4} {'hit@1':>6} {'hit@10':>6} {'mrr@10':>6} {'ndcg@10':>7}")
    for r in rows:
        print(
            f"{r['k']:>3} {r['dense_weight']:>4} {r['sparse_weight']:>4} {r['hit@1']:>6.3f} "
            f"{r['hit@10']:>6.3f} {r['mrr@10']:>6.3f} {r['ndcg@10']:>7.3f}"
        )
    out = Path(__file__).parent / "results" / "hybrid_tune.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
