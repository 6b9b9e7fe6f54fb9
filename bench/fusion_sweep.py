"""Hybrid fusion and chunk-header sweep, in memory, on every evaluation set at once.

Chunks each corpus with the project's own chunker (``pipeline/chunking.py``), embeds the chunks
with the offline embedder (MiniLM int8) and encodes them with the project's BM25 encoder; then
ranks every question by dense, sparse and many fusions of the two, and scores the documents the
way ``tickerwire eval`` does (``evaluation.score`` over the de-duplicated doc ids of the top 30
chunk hits). No Kafka, no index: exact dense search and an in-memory BM25 with Qdrant's IDF.

Embeddings are cached on disk by model and text hash (``bench/.cache/embeddings.sqlite``), so a
variant re-embeds only the texts it changes, and a killed run resumes. FinanceBench is ~12k chunks
per header variant: ~6 minutes of 2 idle cores (~34 texts/s), an hour or more on a busy machine.
Fill the cache once in the background (``nice -n 10 ... --embed-only``), or use ``--subset``.

Usage::

    .venv/bin/python bench/fusion_sweep.py                       # both sets, all header variants
    .venv/bin/python bench/fusion_sweep.py --datasets tatqa --headers none,meta

Writes ``bench/results/fusion_sweep.json`` and ``docs/retrieval.md`` (tables).

Header variants: ``none`` (no header: what ``tickerwire eval`` indexes today), ``title`` (the
title line, as production does for titled documents), ``meta`` (:func:`metadata_header`),
``meta_sec`` (metadata header plus the filing item the chunk is in); ``meta`` and ``meta_sec``
without the title, as ``tickerwire eval`` sends documents by default; ``meta_title`` with it, as
a producer of titled documents does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from tickerwire.core.ports import Embedder, SparseVector
from tickerwire.core.records import DocType
from tickerwire.core.settings import Settings
from tickerwire.evaluation import METRICS, Question, dedupe, load_dataset, mean_scores, score
from tickerwire.pipeline.chunking import chunk_document, metadata_header
from tickerwire.pipeline.clean import clean_document
from tickerwire.pipeline.fusion import (
    FusedHit,
    adaptive_dense_weight,
    adaptive_weights,
    dbsf_fuse,
    normalized_score_fuse,
    rrf_fuse,
)
from tickerwire.pipeline.redact import redact
from tickerwire.pipeline.sparse import BM25Encoder
from tickerwire.runtime import chunker_for
from tickerwire.stages.preprocess import ChunkerConfig

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
HEADERS = ("none", "title", "meta", "meta_sec", "meta_title")
#: raw-document/v1 document types; a corpus row's other types become "filing", as in eval.
DOC_TYPES = frozenset(get_args(DocType))
#: Chunk hits fetched per question, as ``tickerwire eval`` asks for (k=30).
LIMIT = 30
#: Candidates each side contributes to a fusion (HybridParams.prefetch).
PREFETCH = 100

FloatArray = npt.NDArray[np.float32]


# --- embedding cache ----------------------------------------------------------------------------


class EmbeddingCache:
    """Vectors by sha256(model + text), in SQLite; safe to share between runs."""

    def __init__(self, path: Path, model: str, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self._model = model
        self._dim = dim

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model}\0{text}".encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, FloatArray]:
        out: dict[str, FloatArray] = {}
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            for k, blob in self._db.execute(f"SELECT key, v FROM vec WHERE key IN ({marks})", part):
                out[k] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, items: Sequence[tuple[str, FloatArray]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO vec (key, v) VALUES (?, ?)",
            [(k, v.astype(np.float32).tobytes()) for k, v in items],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


async def embed_all(
    embedder: Embedder, cache: EmbeddingCache, texts: Sequence[str], *, label: str
) -> FloatArray:
    """Vectors of ``texts`` (cached ones from the cache; the rest embedded and stored)."""
    keys = [cache.key(t) for t in texts]
    have = cache.get_many(sorted(set(keys)))
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in have}.items())
    if missing:
        started = time.perf_counter()
        print(f"[{label}] embedding {len(missing)} of {len(texts)} texts", file=sys.stderr)
        step = 256
        for start in range(0, len(missing), step):
            part = missing[start : start + step]
            vectors = await embedder.embed_documents([t for _, t in part])
            items = [
                (k, np.asarray(v, dtype=np.float32))
                for (k, _), v in zip(part, vectors, strict=True)
            ]
            cache.put_many(items)
            have.update(items)
            done = start + len(part)
            rate = done / (time.perf_counter() - started)
            print(f"[{label}] {done}/{len(missing)} ({rate:.1f} texts/s)", file=sys.stderr)
    return np.stack([have[k] for k in keys]) if keys else np.zeros((0, embedder.dim), np.float32)


# --- corpus → chunks ----------------------------------------------------------------------------


@dataclass
class Chunked:
    """The chunks of one corpus under one header variant."""

    doc_ids: list[str]
    texts: list[str]  # embedded text (header + chunk)


def chunk_corpus(corpus: Sequence[dict[str, Any]], header: str, chunker: ChunkerConfig) -> Chunked:
    """Clean, redact and chunk each corpus row as the preprocess stage does a raw document."""
    doc_ids: list[str] = []
    texts: list[str] = []
    for row in corpus:
        body = redact(clean_document(str(row["text"]), "text/plain")).text
        title = redact(str(row.get("title") or "")).text
        metadata = {"company": row.get("company"), **(row.get("metadata") or {})}
        doc_header: str | None
        if header == "none":
            doc_header = ""
        elif header == "title":
            doc_header = None  # the chunker's title header
        else:
            doc_header = metadata_header(
                # `tickerwire eval` sends no titles unless asked (--titles): meta_title does.
                title=title if header == "meta_title" else "",
                doc_type=row["doc_type"] if row.get("doc_type") in DOC_TYPES else "filing",
                tickers=[str(t).upper() for t in row.get("tickers") or []],
                metadata=metadata,
            )
        for chunk in chunk_document(
            doc_id=str(row["id"]),
            title=title,
            text=body,
            max_tokens=chunker.max_tokens,
            overlap=chunker.overlap,
            make_splitter=chunker.make_splitter,
            count_tokens=chunker.count_tokens,
            header=doc_header,
            sections=header == "meta_sec",
        ):
            doc_ids.append(str(row["id"]))
            texts.append(chunk.embed_text)
    return Chunked(doc_ids=doc_ids, texts=texts)


def subset_corpus(
    corpus: Sequence[dict[str, Any]], questions: Sequence[Question], fraction: float
) -> list[dict[str, Any]]:
    """Every document some question needs, plus a fixed ``fraction`` of the others (by id hash).

    Fewer distractors make every option score higher: compare options on one subset, never a
    subset's numbers with a full corpus's.
    """
    needed = set().union(*(q.relevant for q in questions))
    cut = int(fraction * 2**32)
    return [
        row
        for row in corpus
        if str(row["id"]) in needed
        or int.from_bytes(hashlib.blake2b(str(row["id"]).encode(), digest_size=4).digest()) < cut
    ]


# --- in-memory retrieval ------------------------------------------------------------------------


class SparseIndex:
    """BM25 over sparse document vectors, with Qdrant's IDF modifier applied at query time."""

    def __init__(self, vectors: Sequence[SparseVector]) -> None:
        rows: dict[int, list[int]] = {}
        weights: dict[int, list[float]] = {}
        for row, vec in enumerate(vectors):
            for i, w in zip(vec.indices, vec.values, strict=True):
                rows.setdefault(i, []).append(row)
                weights.setdefault(i, []).append(w)
        n = len(vectors)
        self._n = n
        self._postings = {
            i: (np.asarray(r, dtype=np.int64), np.asarray(weights[i], dtype=np.float32))
            for i, r in rows.items()
        }
        self._idf = {
            i: math.log(1.0 + (n - len(r) + 0.5) / (len(r) + 0.5)) for i, r in rows.items()
        }

    def search(self, query: SparseVector, limit: int) -> tuple[npt.NDArray[np.int64], FloatArray]:
        scores = np.zeros(self._n, dtype=np.float32)
        touched = False
        for i, qw in zip(query.indices, query.values, strict=True):
            posting = self._postings.get(i)
            if posting is None:
                continue
            touched = True
            scores[posting[0]] += np.float32(self._idf[i] * qw) * posting[1]
        if not touched:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return top(scores, limit, positive=True)


def top(
    scores: FloatArray, limit: int, *, positive: bool = False
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Indices and scores of the ``limit`` best, best first (only > 0 when ``positive``)."""
    limit = min(limit, len(scores))
    idx = np.argpartition(-scores, limit - 1)[:limit] if limit else np.zeros(0, np.int64)
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    if positive:
        idx = idx[scores[idx] > 0]
    return idx.astype(np.int64), scores[idx]


@dataclass
class Ranked:
    """Per question: dense and sparse candidate lists (chunk row, score), best first."""

    dense: list[list[tuple[int, float]]] = field(default_factory=list)
    sparse: list[list[tuple[int, float]]] = field(default_factory=list)


def rank_all(
    chunk_vectors: FloatArray,
    sparse_index: SparseIndex,
    query_vectors: FloatArray,
    query_sparse: Sequence[SparseVector],
    depth: int,
) -> Ranked:
    out = Ranked()
    sims = query_vectors @ chunk_vectors.T
    for q in range(len(query_sparse)):
        di, ds = top(sims[q], depth)
        out.dense.append(list(zip(di.tolist(), ds.tolist(), strict=True)))
        out.sparse.append(search_sparse(sparse_index, query_sparse[q], depth))
    return out


def search_sparse(index: SparseIndex, query: SparseVector, depth: int) -> list[tuple[int, float]]:
    rows, scores = index.search(query, depth)
    return list(zip(rows.tolist(), scores.tolist(), strict=True))


Candidates = list[tuple[int, float]]
Fuser = Callable[[Candidates, Candidates], list[FusedHit[int]]]


def _rrf(k: int, wd: float, ws: float) -> Fuser:
    return lambda d, s: rrf_fuse([d, s], k=k, weights=[wd, ws])


def _dbsf(wd: float, ws: float) -> Fuser:
    return lambda d, s: dbsf_fuse([d, s], [wd, ws])


def _minmax(alpha: float) -> Fuser:
    return lambda d, s: normalized_score_fuse(d, s, dense_weight=alpha)


def _adaptive_rrf(k: int) -> Fuser:
    return lambda d, s: rrf_fuse([d, s], k=k, weights=adaptive_weights([v for _, v in s]))


def _adaptive_dbsf(d: Candidates, s: Candidates) -> list[FusedHit[int]]:
    return dbsf_fuse([d, s], adaptive_weights([v for _, v in s]))


def _adaptive_minmax(d: Candidates, s: Candidates) -> list[FusedHit[int]]:
    return normalized_score_fuse(d, s, dense_weight=adaptive_dense_weight([v for _, v in s]))


def _single(side: int) -> Fuser:
    return lambda d, s: [FusedHit(i, v) for i, v in (d, s)[side]]


def fusers() -> dict[str, Fuser]:
    """Every fusion tried, by name."""
    out: dict[str, Fuser] = {"dense": _single(0), "sparse": _single(1)}
    for k in (1, 2, 10, 60):
        for wd, ws in ((1.0, 1.0), (1.0, 2.0), (1.0, 3.0), (2.0, 1.0), (3.0, 1.0)):
            out[f"rrf k={k} w={wd:g}:{ws:g}"] = _rrf(k, wd, ws)
    for wd, ws in ((1.0, 1.0), (1.0, 0.5), (0.5, 1.0)):
        out[f"dbsf w={wd:g}:{ws:g}"] = _dbsf(wd, ws)
    for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):
        out[f"minmax a={alpha:g}"] = _minmax(alpha)
    for k in (1, 10, 60):
        out[f"adaptive rrf k={k}"] = _adaptive_rrf(k)
    out["adaptive dbsf"] = _adaptive_dbsf
    out["adaptive minmax"] = _adaptive_minmax
    return out


def evaluate(
    ranked: Ranked,
    doc_ids: Sequence[str],
    questions: Sequence[Question],
    *,
    only: set[str] | None = None,
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, fuse in fusers().items():
        if only is not None and name not in only:
            continue
        rows = []
        for q, d, s in zip(questions, ranked.dense, ranked.sparse, strict=True):
            hits = fuse(d, s)[:LIMIT]
            rows.append(score(dedupe(doc_ids[h.key] for h in hits), q.relevant))
        out[name] = mean_scores(rows)
    return out


# --- driver -------------------------------------------------------------------------------------


def load_embedder() -> Any:
    from tickerwire.adapters.embed_local import LocalEmbedder

    return LocalEmbedder()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    embedder = load_embedder()
    cache = EmbeddingCache(args.cache / "embeddings.sqlite", embedder.name, embedder.dim)
    encoder = BM25Encoder()
    chunker = chunker_for(Settings(), embedder)
    results: dict[str, Any] = {"embedder": embedder.name, "prefetch": PREFETCH, "sets": {}}
    try:
        for name in args.datasets:
            data = load_dataset(args.data / name)
            questions = data.questions[:: args.every]
            fraction = args.subset.get(name)
            if fraction is not None:
                data.corpus = subset_corpus(data.corpus, questions, fraction)
                print(f"[{name}] subset: {len(data.corpus)} documents", file=sys.stderr)
            qvecs: FloatArray | None = None
            qsparse = [encoder.encode_query(q.text) for q in questions]
            per_set: dict[str, Any] = {
                "questions": len(questions),
                "documents": len(data.corpus),
                "subset": fraction,
                "headers": {},
            }
            seen: dict[tuple[bool, str], dict[str, Any]] = {}
            for header in args.headers:
                started = time.perf_counter()
                chunked = chunk_corpus(data.corpus, header, chunker)
                label = f"{name}/{header}"
                fingerprint = (
                    label in args.sparse_only,
                    hashlib.sha256("\0".join(chunked.texts).encode()).hexdigest(),
                )
                if fingerprint in seen:
                    # The same chunk texts as an earlier variant (e.g. a metadata header on a
                    # corpus without metadata): the same rankings, so the same numbers.
                    per_set["headers"][header] = {
                        **seen[fingerprint],
                        "same_texts_as": seen[fingerprint]["header"],
                    }
                    continue
                sparse = SparseIndex([encoder.encode_document(t) for t in chunked.texts])
                if label in args.sparse_only:
                    # Sparse only: nothing to embed (BM25 alone, for variants not embedded).
                    ranked = Ranked(
                        dense=[[] for _ in questions],
                        sparse=[search_sparse(sparse, v, PREFETCH) for v in qsparse],
                    )
                    metrics = evaluate(ranked, chunked.doc_ids, questions, only={"sparse"})
                else:
                    vectors = await embed_all(embedder, cache, chunked.texts, label=label)
                    if args.embed_only:
                        continue
                    if qvecs is None:
                        qvecs = await embed_all(
                            embedder, cache, [q.text for q in questions], label=f"{name}/questions"
                        )
                    ranked = rank_all(vectors, sparse, qvecs, qsparse, PREFETCH)
                    metrics = evaluate(ranked, chunked.doc_ids, questions)
                per_set["headers"][header] = {
                    "chunks": len(chunked.texts),
                    "seconds": round(time.perf_counter() - started, 1),
                    "metrics": metrics,
                }
                seen[fingerprint] = {**per_set["headers"][header], "header": header}
                print_rows(label, metrics)
            results["sets"][name] = per_set
    finally:
        cache.close()
        await embedder.aclose()
    return results


def print_rows(label: str, metrics: dict[str, dict[str, float]]) -> None:
    print(f"\n{label}\n{'option':<24} " + " ".join(f"{m:>9}" for m in METRICS))
    for option, row in metrics.items():
        print(f"{option:<24} " + " ".join(f"{row[m]:>9.3f}" for m in METRICS))


def cross_check(results: dict[str, Any], header: str) -> dict[str, Any]:
    """Per fusion option: its margin over the better single mode on each set, and tune-on-one.

    ``margin`` is nDCG@10 minus max(dense, sparse) nDCG@10 on that set; ``worst_margin`` the
    smaller over the sets (an option that generalizes keeps it >= 0 everywhere). ``transfer``
    picks the best option on one set and reports what it scores on each other set.
    """
    sets = complete_sets(results, header)
    table = {s: results["sets"][s]["headers"][header]["metrics"] for s in sets}
    if not sets:
        return {}
    options = [o for o in table[sets[0]] if o not in ("dense", "sparse")]
    margins: dict[str, dict[str, float]] = {}
    for option in options:
        row: dict[str, float] = {}
        for s in sets:
            floor = max(table[s]["dense"]["ndcg@10"], table[s]["sparse"]["ndcg@10"])
            row[s] = round(table[s][option]["ndcg@10"] - floor, 4)
        row["worst_margin"] = min(row[s] for s in sets)
        margins[option] = row
    transfer = {}
    for tune in sets:
        best = max(options, key=lambda o: table[tune][o]["ndcg@10"])
        transfer[tune] = {
            "best": best,
            **{f"ndcg@10 on {s}": table[s][best]["ndcg@10"] for s in sets},
        }
    robust = max(options, key=lambda o: margins[o]["worst_margin"])
    return {"margins": margins, "transfer": transfer, "most_robust": robust}


def complete_sets(results: dict[str, Any], header: str) -> list[str]:
    """The sets on which ``header`` ran every option (not sparse only)."""
    return [
        s
        for s, per_set in results["sets"].items()
        if "dense" in per_set["headers"].get(header, {}).get("metrics", {})
    ]


def iter_table(results: dict[str, Any], header: str) -> Iterator[str]:
    sets = complete_sets(results, header)
    if not sets:
        return
    check = cross_check(results, header)
    yield (
        "| option | "
        + " | ".join(f"{s} hit@10 | {s} nDCG@10 | {s} margin" for s in sets)
        + " | worst margin |"
    )
    yield "|---|" + "---|---|---|" * len(sets) + "---|"
    options = results["sets"][sets[0]]["headers"][header]["metrics"]
    for option in options:
        cells = []
        margin = check["margins"].get(option)
        for s in sets:
            row = results["sets"][s]["headers"][header]["metrics"][option]
            m = f"{margin[s]:+.3f}" if margin else ""
            cells.append(f"{row['hit@10']:.3f} | {row['ndcg@10']:.3f} | {m}")
        worst = f"{margin['worst_margin']:+.3f}" if margin else ""
        yield f"| {option} | " + " | ".join(cells) + f" | {worst} |"
    yield ""
    for tune, pick in check["transfer"].items():
        scores = ", ".join(f"{k} {v:.3f}" for k, v in pick.items() if k != "best")
        yield f"- tuned on {tune}: best is `{pick['best']}` ({scores})"
    yield f"- best worst-case margin over both sets: `{check['most_robust']}`"


def header_table(results: dict[str, Any], options: Sequence[str]) -> Iterator[str]:
    """nDCG@10 / hit@10 of a few options under each header variant, per set."""
    yield "| set | header | chunks | " + " | ".join(f"{o} hit@10 / nDCG@10" for o in options) + " |"
    yield "|---|---|---|" + "---|" * len(options)
    for name, per_set in results["sets"].items():
        for header, run in per_set["headers"].items():
            cells = []
            for o in options:
                row = run["metrics"].get(o)
                cells.append(f"{row['hit@10']:.3f} / {row['ndcg@10']:.3f}" if row else "")
            yield f"| {name} | {header} | {run['chunks']} | " + " | ".join(cells) + " |"


#: docs/retrieval.md keeps what is above this line (the written findings) and regenerates the rest.
MARKER = "<!-- everything below is generated by bench/fusion_sweep.py -->"


def write_markdown(results: dict[str, Any], path: Path, command: str) -> None:
    kept = ["# Retrieval: chunk headers and hybrid fusion, measured on both dev sets", ""]
    if path.is_file() and MARKER in (old := path.read_text("utf-8")):
        kept = [*old.split(MARKER, 1)[0].rstrip("\n").split("\n"), ""]
    lines = [
        *kept,
        MARKER,
        "",
        "## Sweep tables",
        "",
        f"Produced by `{command}` (bench/fusion_sweep.py; raw numbers in",
        "bench/results/fusion_sweep.json). In memory: the project's chunker, the offline",
        f"embedder ({results['embedder']}), the project's BM25 encoder with Qdrant's IDF, exact",
        f"dense search, {results['prefetch']} candidates per side, top {LIMIT} chunk hits",
        "de-duplicated to documents and scored as `tickerwire eval` scores them.",
        "`margin` = nDCG@10 minus the better single mode's nDCG@10 on that set.",
        "",
        "### Header variants",
        "",
    ]
    lines += header_table(
        results, ["dense", "sparse", "rrf k=60 w=1:1", "rrf k=1 w=1:3", "adaptive minmax"]
    )
    for header in HEADERS:
        table = list(iter_table(results, header))
        if table:
            lines += ["", f"### Fusion options, header `{header}`", "", *table]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", "utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument(
        "--datasets", type=lambda s: s.split(","), default=["tatqa", "financebench-dev"]
    )
    ap.add_argument("--headers", type=lambda s: s.split(","), default=list(HEADERS))
    ap.add_argument("--every", type=int, default=1, help="Use every Nth question.")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--embed-only", action="store_true", help="Fill the cache, score nothing.")
    ap.add_argument(
        "--subset",
        type=lambda s: {k: float(v) for k, v in (p.split("=") for p in s.split(","))},
        default={},
        help="SET=FRACTION,...: keep the needed documents and that fraction of the others.",
    )
    ap.add_argument(
        "--sparse-only",
        type=lambda s: set(s.split(",")),
        default=set(),
        help="SET/HEADER runs scored with BM25 only, not embedded (e.g. financebench-dev/title).",
    )
    ap.add_argument("--output", type=Path, default=RESULTS / "fusion_sweep.json")
    ap.add_argument(
        "--markdown",
        type=lambda s: None if s == "none" else Path(s),
        default=DOCS / "retrieval.md",
        help="Where the tables go ('none': nowhere).",
    )
    args = ap.parse_args()
    for h in args.headers:
        if h not in HEADERS:
            ap.error(f"unknown header variant {h!r}; choose from {', '.join(HEADERS)}")
    results = asyncio.run(run(args))
    if args.embed_only:
        return
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for header in HEADERS:
        check = cross_check(results, header)
        if check:
            results.setdefault("cross_check", {})[header] = check
    args.output.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    print(f"\nwrote {args.output}")
    if args.markdown is not None:
        command = "python bench/fusion_sweep.py " + " ".join(sys.argv[1:])
        write_markdown(results, args.markdown, command.strip())
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
