"""Sweep the weighted-RRF parameters of hybrid search on an evaluation index.

Usage: run ``tickerwire eval --dataset DIR --output OUT --work-dir WORK`` once, then
``python bench/hybrid_tune.py --dataset DIR --work-dir WORK``. Every setting is scored with the
index's own hybrid query (Qdrant's weighted RRF), not a re-implementation of it: a client-side
simulation of "sum of w / (k + rank)" did not reproduce Qdrant's rankings. Prints a table and
writes ``bench/results/hybrid_tune.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from tickerwire.core.ports import HybridParams, IndexQuery, SearchMode
from tickerwire.core.settings import Settings
from tickerwire.evaluation import dedupe, load_dataset, mean_scores, score
from tickerwire.runtime import open_resources

#: (rrf_k, dense_weight, sparse_weight) of each setting, in the order they are scored.
GRID = [
    # Plain RRF (equal weights), k falling.
    *[(k, 1.0, 1.0) for k in (60, 10, 2, 1)],
    # One side three times the other, at k=10.
    (10, 1.0, 3.0),
    (10, 3.0, 1.0),
    # Sparse weighted up, at small k: {k: sparse weights}.
    *[
        (k, 1.0, sparse)
        for k, sparse_weights in {5: (3.0,), 2: (2.0, 6.0), 1: (2.0, 3.0, 4.0)}.items()
        for sparse in sparse_weights
    ],
]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--every", type=int, default=1, help="Use every Nth question.")
    args = ap.parse_args()
    questions = load_dataset(args.dataset).questions[:: args.every]
    settings = Settings(data_dir=args.work_dir / "data")
    res = await open_resources(settings, with_index=True)
    assert res.index is not None
    rows = []
    try:
        encoded = [
            (await res.embedder.embed_query(q.text), res.sparse.encode_query(q.text))
            for q in questions
        ]
        runs: list[tuple[str, SearchMode, HybridParams]] = [
            (mode, mode, settings.hybrid_params()) for mode in ("dense", "sparse")
        ]
        runs += [
            (
                f"hybrid k={k} w={wd}:{ws}",
                "hybrid",
                HybridParams(rrf_k=k, dense_weight=wd, sparse_weight=ws, prefetch=100),
            )
            for k, wd, ws in GRID
        ]
        for label, mode, params in runs:
            scored = []
            for q, (dv, sv) in zip(questions, encoded, strict=True):
                hits = await res.index.search(
                    IndexQuery(mode, dense=dv, sparse=sv, limit=30, hybrid=params)
                )
                scored.append(score(dedupe(str(h.payload["doc_id"]) for h in hits), q.relevant))
            rows.append({"mode": label, **mean_scores(scored)})
    finally:
        await res.aclose()
    print(f"{'mode':<26} {'hit@1':>6} {'hit@10':>6} {'mrr@10':>6} {'ndcg@10':>7}")
    for r in rows:
        print(
            f"{r['mode']:<26} {r['hit@1']:>6.3f} {r['hit@10']:>6.3f} {r['mrr@10']:>6.3f} "
            f"{r['ndcg@10']:>7.3f}"
        )
    out = Path(__file__).parent / "results" / "hybrid_tune.json"
    out.write_text(json.dumps({"questions": len(questions), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
