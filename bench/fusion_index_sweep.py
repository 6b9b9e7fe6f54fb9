"""Hybrid fusion sweep on the indexes ``tickerwire eval`` built, with query understanding as served.

``tickerwire eval --work-dir DIR`` keeps the index it streamed a dataset into. For every question
this asks that index what ``/v1/search`` would ask it (``SearchService.narrow``: the understood
ticker filter and period scope), once in dense mode and once in sparse mode, ``--depth``
candidates each. Then every fusion option ranks the two lists at each candidate depth, the
understood boosts re-rank, and the documents of the top 30 chunks are scored as ``tickerwire
eval`` scores them. The candidate lists are the pipeline's own (chunker, headers, embedder, BM25,
Qdrant Edge), so a row here is what the pipeline gives with that setting.

    .venv/bin/tickerwire eval --dataset ../shared/data/tatqa --output /tmp/tq --work-dir /tmp/tq-w
    .venv/bin/tickerwire eval --dataset ../shared/data/financebench-dev --output /tmp/fb \\
        --work-dir /tmp/fb-w
    .venv/bin/python bench/fusion_index_sweep.py --set tatqa=../shared/data/tatqa:/tmp/tq-w \\
        --set financebench=../shared/data/financebench-dev:/tmp/fb-w

Writes ``bench/results/fusion_index_sweep.json`` and prints one table per depth, with each
option's margin over the better single mode on each set (the worst margin decides).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.kept_index import open_kept_index
from tickerwire.core.ports import HybridParams, IndexQuery, ScoredHit, SearchMode
from tickerwire.evaluation import dedupe, mean_scores, score
from tickerwire.pipeline.fusion import fuse_hits
from tickerwire.query.search import apply_understanding
from tickerwire.query.understanding import Understanding

#: The options compared; "dense" and "sparse" are the single modes.
OPTIONS: dict[str, HybridParams | None] = {
    "dense": None,
    "sparse": None,
    "rrf k=2 w=1:2": HybridParams(fusion="rrf", rrf_k=2, dense_weight=1, sparse_weight=2),
    "rrf k=60 w=1:1": HybridParams(fusion="rrf", rrf_k=60),
    "rrf k=20 w=1:1": HybridParams(fusion="rrf", rrf_k=20),
    "dbsf w=1:1": HybridParams(fusion="dbsf"),
    "minmax a=0.4": HybridParams(fusion="minmax", dense_share=0.4),
    "minmax a=0.5": HybridParams(fusion="minmax", dense_share=0.5),
    "adaptive minmax": HybridParams(fusion="adaptive"),
    "maxnorm a=0.3": HybridParams(fusion="maxnorm", dense_share=0.3),
    "maxnorm a=0.4": HybridParams(fusion="maxnorm", dense_share=0.4),
    "maxnorm a=0.5": HybridParams(fusion="maxnorm", dense_share=0.5),
    "maxnorm a=0.6": HybridParams(fusion="maxnorm", dense_share=0.6),
}
SINGLE: tuple[SearchMode, SearchMode] = ("dense", "sparse")
TOP_CHUNKS = 30


@dataclass(frozen=True, slots=True)
class Asked:
    """One question's candidate lists, as the index returned them."""

    relevant: frozenset[str]
    understood: Understanding | None
    dense: list[ScoredHit]
    sparse: list[ScoredHit]


async def collect(dataset: Path, work_dir: Path, depth: int) -> list[Asked]:
    """Ask the kept index every question of ``dataset`` in both modes, ``depth`` deep."""
    data, res = await open_kept_index(dataset, work_dir / "data")
    try:
        assert res.index is not None
        search = res.search_service()
        asked = []
        for q in data.questions:
            u, filters, _ = search.narrow(q.text, TOP_CHUNKS, None)
            dense = await res.embedder.embed_query(q.text)
            lists = [
                await res.index.search(
                    IndexQuery(
                        mode,
                        dense=dense if mode == "dense" else None,
                        sparse=res.sparse.encode_query(q.text) if mode == "sparse" else None,
                        filters=filters,
                        limit=depth,
                    )
                )
                for mode in SINGLE
            ]
            asked.append(Asked(frozenset(q.relevant), u, lists[0], lists[1]))
        return asked
    finally:
        await res.aclose()


def ranked(asked: Asked, option: str, depth: int) -> list[str]:
    """The documents one option ranks first for one question, with ``depth`` candidates a side."""
    dense, sparse = asked.dense[:depth], asked.sparse[:depth]
    params = OPTIONS[option]
    if params is None:
        hits = dense if option == "dense" else sparse
    else:
        hits = fuse_hits(dense, sparse, params, max(depth, TOP_CHUNKS))
    if asked.understood is not None:
        hits = apply_understanding(hits, asked.understood)
    return dedupe(str(h.payload.get("doc_id")) for h in hits[:TOP_CHUNKS])


def sweep(asked: Sequence[Asked], depths: Sequence[int]) -> dict[str, dict[str, dict[str, float]]]:
    """``{depth: {option: metrics}}`` over one dataset's questions."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for depth in depths:
        out[str(depth)] = {
            option: mean_scores([score(ranked(a, option, depth), a.relevant) for a in asked])
            for option in OPTIONS
        }
    return out


def margins(results: dict[str, Any], depth: str, metric: str) -> dict[str, dict[str, float]]:
    """Each option's ``metric`` minus the better single mode's, per set, and the worst."""
    table: dict[str, dict[str, float]] = {}
    for option in OPTIONS:
        row: dict[str, float] = {}
        for name, by_depth in results.items():
            cell = by_depth[depth]
            row[name] = cell[option][metric] - max(cell[s][metric] for s in SINGLE)
        row["worst"] = min(row.values())
        table[option] = row
    return table


def print_tables(results: dict[str, Any], depths: Sequence[int]) -> None:
    names = list(results)
    for depth in map(str, depths):
        print(f"\n{depth} candidates a side: hit@10 / nDCG@10 (nDCG margin over best single)")
        worst = margins(results, depth, "ndcg@10")
        worst_hit = margins(results, depth, "hit@10")
        for option in OPTIONS:
            cells = [
                f"{results[n][depth][option]['hit@10']:.3f} / "
                f"{results[n][depth][option]['ndcg@10']:.3f} ({worst[option][n]:+.3f})"
                for n in names
            ]
            tail = (
                ""
                if option in SINGLE
                else (
                    f"  worst nDCG {worst[option]['worst']:+.3f}"
                    f" hit {worst_hit[option]['worst']:+.3f}"
                )
            )
            print(f"  {option:16s} " + "   ".join(cells) + tail)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for spec in args.set:
        name, _, paths = spec.partition("=")
        dataset, _, work_dir = paths.partition(":")
        asked = await collect(Path(dataset), Path(work_dir), max(args.depths))
        results[name] = sweep(asked, args.depths)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--set",
        action="append",
        required=True,
        help="NAME=DATASET_DIR:EVAL_WORK_DIR (repeat for every set)",
    )
    parser.add_argument(
        "--depths", type=lambda v: [int(x) for x in v.split(",")], default=[100, 200, 400]
    )
    parser.add_argument(
        "--output", type=Path, default=Path("bench/results/fusion_index_sweep.json")
    )
    args = parser.parse_args()
    results = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "results": results,
        "margins_ndcg@10": {d: margins(results, str(d), "ndcg@10") for d in args.depths},
        "margins_hit@10": {d: margins(results, str(d), "hit@10") for d in args.depths},
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_tables(results, args.depths)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
