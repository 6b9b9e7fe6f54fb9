"""Score a dataset's questions on an index that is already built, query understanding on and off.

For an index kept by ``tickerwire eval --work-dir DIR`` (``DIR/data``). The entity registry is
rebuilt from the corpus rows with the same function the preprocess stage runs on each document
(:func:`tickerwire.pipeline.entities.observations`), since the eval's Kafka folder is removed at
the end. Questions whose relevant passages are not all in the index are scored apart.

``--payload-from-corpus`` adds the payload fields that branch ``contracts`` puts in the index
(``company``, ``fiscal_period``, ``fiscal_year``, from each row's metadata) to every hit, for an
index built before those fields existed.

    .venv/bin/python bench/understanding_eval.py --dataset ../shared/data/financebench-dev \\
        --data-dir DIR/data --output bench/results/understanding_financebench.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from common.kept_index import open_kept_index
from tickerwire.core.ports import IndexQuery, ScoredHit, SearchFilters, VectorIndex
from tickerwire.evaluation import MODES, corpus_documents, dedupe, mean_scores, score
from tickerwire.query.payload_match import parse_fiscal_period
from tickerwire.query.search import SearchService


class PayloadFromCorpus:
    """Adds ``company``, ``fiscal_period`` and ``fiscal_year`` of each hit's row to its payload."""

    def __init__(self, index: VectorIndex, rows: dict[str, dict[str, Any]]) -> None:
        self._index = index
        self._rows = rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    async def search(self, query: IndexQuery) -> list[ScoredHit]:
        hits = await self._index.search(query)
        out = []
        for hit in hits:
            meta = self._rows.get(str(hit.payload.get("doc_id")), {})
            fp = meta.get("fiscal_period")
            parsed = parse_fiscal_period(fp) if isinstance(fp, str) else None
            extra = {
                "company": meta.get("company"),
                "fiscal_period": fp,
                "fiscal_year": parsed[0] if parsed else None,
            }
            out.append(ScoredHit(id=hit.id, score=hit.score, payload={**hit.payload, **extra}))
        return out


async def measure(dataset: Path, data_dir: Path, payload_from_corpus: bool) -> dict[str, Any]:
    data, res = await open_kept_index(dataset, data_dir)
    try:
        assert res.index is not None
        indexed: dict[str, bool] = {}
        for q in data.questions:
            for doc_id in q.relevant:
                if doc_id not in indexed:
                    n = await res.index.count(SearchFilters(doc_ids=(doc_id,)))
                    indexed[doc_id] = n > 0
        complete = [q for q in data.questions if all(indexed[d] for d in q.relevant)]
        search = res.search_service()
        if payload_from_corpus:
            docs = corpus_documents(data.corpus, titles=False)
            by_id = {d["doc_id"]: d["metadata"] for d in docs}
            search = SearchService(
                embedder=res.embedder,
                sparse=res.sparse,
                index=PayloadFromCorpus(res.index, by_id),
                hybrid=res.settings.hybrid_params(),
                registry=res.registry,
            )
        out: dict[str, Any] = {
            "_run": {
                "questions": len(data.questions),
                "questions_with_evidence_indexed": len(complete),
                "points": await res.index.count(),
                "tickers_learned": len(res.registry),
                "payload_from_corpus": payload_from_corpus,
            }
        }
        for subset, questions in (("all", data.questions), ("evidence_indexed", complete)):
            for understand in (True, False):
                for mode in MODES:
                    rows = []
                    for q in questions:
                        found = await search.search(q.text, k=30, mode=mode, understand=understand)
                        ranked = dedupe(str(h.payload.get("doc_id")) for h in found.hits)
                        rows.append(score(ranked, q.relevant))
                    name = f"{subset}/{mode}/{'understand' if understand else 'plain'}"
                    out[name] = mean_scores(rows)
        return out
    finally:
        await res.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--payload-from-corpus", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.dataset, args.data_dir, args.payload_from_corpus))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, metrics in result.items():
        if not name.startswith("_"):
            print(f"{name:42s} hit@10 {metrics['hit@10']:.3f}  nDCG@10 {metrics['ndcg@10']:.3f}")
    print(result["_run"])


if __name__ == "__main__":
    main()
