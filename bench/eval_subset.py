"""Write a seeded subset of an evaluation dataset (for quick ``tickerwire eval --answers`` runs).

Keeps ``--questions`` questions (seeded), every passage they name as relevant (for TAT-QA, their
whole contexts), and ``--distractors`` other passages. Usage:
``python bench/eval_subset.py ../shared/data/tatqa /tmp/tatqa-sub --questions 150``
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--distractors", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    corpus = _jsonl(args.source / "corpus.jsonl")
    questions = [q for q in _jsonl(args.source / "questions.jsonl") if q.get("relevant_ids")]
    chosen = rng.sample(questions, min(args.questions, len(questions)))
    keep = {doc_id for q in chosen for doc_id in q["relevant_ids"]}
    contexts = {row["doc_name"] for row in corpus if row["id"] in keep and row.get("doc_name")}
    keep |= {row["id"] for row in corpus if row.get("doc_name") in contexts}
    others = [row for row in corpus if row["id"] not in keep]
    keep |= {row["id"] for row in rng.sample(others, min(args.distractors, len(others)))}
    args.target.mkdir(parents=True, exist_ok=True)
    rows = [row for row in corpus if row["id"] in keep]
    (args.target / "corpus.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows), "utf-8"
    )
    (args.target / "questions.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in chosen), "utf-8"
    )
    print(f"{args.target}: {len(rows)} passages, {len(chosen)} questions")


if __name__ == "__main__":
    main()
