"""Where benchmarks read and write, and the raw documents they stream (packed from TAT-QA)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The project checkout (bench/common/ → parents[2]).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where results go: ``bench/results``, or ``$TICKERWIRE_BENCH_RESULTS`` (``run_all.py`` sets it).
RESULTS_DIR = Path(os.environ.get("TICKERWIRE_BENCH_RESULTS") or REPO_ROOT / "bench" / "results")
#: The project's jar cache (shared with the tests), so no benchmark downloads anything.
KAFKA_LIBS = REPO_ROOT / ".tickerwire" / "kafka" / "libs"
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "tatqa" / "corpus.jsonl"

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Passage:
    title: str
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


def _read_corpus(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_passages(path: Path, count: int, *, target_words: int = 200) -> list[Passage]:
    """``count`` passages of about ``target_words`` words, packed from consecutive corpus rows.

    TAT-QA paragraphs average about 40 words, so consecutive paragraphs (and tables) of the same
    report are joined with blank lines until the target is reached. When the corpus runs out the
    passages repeat (documents get distinct ids, so their chunks are still distinct points).
    ``target_words <= 0`` returns the corpus rows one by one (short documents).
    """
    rows = _read_corpus(path)
    packed: list[Passage] = []
    if target_words <= 0:
        packed = [Passage(r["title"], r["text"].strip()) for r in rows if r["text"].strip()]
    else:
        current: list[str] = []
        words = 0
        title = ""
        for row in rows:
            text = row["text"].strip()
            n = len(text.split())
            if not text or n > target_words * 1.2:
                continue  # one giant table is not a "200-word passage"
            if current and words + n > target_words * 1.2:
                packed.append(Passage(title, "\n\n".join(current)))
                current, words = [], 0
            if not current:
                title = f"Annual report {row['doc_name'].removeprefix('tatqa-')}"
            current.append(text)
            words += n
            if words >= target_words * 0.9:
                packed.append(Passage(title, "\n\n".join(current)))
                current, words = [], 0
    if not packed:
        raise ValueError(f"no passages in {path}")
    return [packed[i % len(packed)] for i in range(count)]


def raw_document(doc_id: str, passage: Passage, *, version: int = 1) -> dict[str, Any]:
    """A raw-document/v1 upsert for ``passage``."""
    return {
        "schema": "raw-document/v1",
        "doc_id": doc_id,
        "op": "upsert",
        "version": version,
        "source": "bench",
        "doc_type": "filing",
        "title": passage.title,
        "body": passage.text,
        "content_type": "text/plain",
        "published_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "tickers": [],
        "language": "en",
    }
