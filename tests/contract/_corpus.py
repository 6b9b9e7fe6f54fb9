"""The contract suite's tiny handmade corpus and back-end opener."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.core.payload import IndexPayload
from tickerwire.core.ports import Point, SparseVector, VectorIndex

DIM = 8
SHARED_TERM = 500

# (doc_id, tickers, doc_type, source, published day in 2024, chunk count)
DOCS: tuple[tuple[str, tuple[str, ...], str, str, datetime, int], ...] = (
    ("d1", ("AAPL",), "filing", "sec", datetime(2024, 1, 1, tzinfo=UTC), 3),
    ("d2", ("MSFT",), "news", "reuters", datetime(2024, 2, 1, tzinfo=UTC), 2),
    ("d3", ("AAPL", "MSFT"), "news", "bloomberg", datetime(2024, 3, 1, tzinfo=UTC), 1),
    ("d4", ("TSLA",), "transcript", "seekingalpha", datetime(2024, 4, 1, tzinfo=UTC), 2),
)


def point_id(doc_id: str, chunk_index: int) -> str:
    """Deterministic uuid5 id, as the pipeline derives them."""
    return str(uuid5(NAMESPACE_URL, f"{doc_id}#{chunk_index}"))


def basis(i: int) -> list[float]:
    """Axis ``i`` plus a small seeded jitter elsewhere, so no two cosines tie."""
    rng = random.Random(i)
    vec = [rng.uniform(0.01, 0.2) for _ in range(DIM)]
    vec[i % DIM] = 1.0
    return vec


def term(i: int) -> int:
    """The sparse term unique to corpus point ``i``."""
    return 100 + i


def make_corpus() -> list[Point]:
    """Eight points: point ``i`` has dense ``basis(i)`` and sparse terms {term(i), SHARED}.

    The weight on the shared term grows with ``i``, so a shared-term query ranks without ties.
    """
    points: list[Point] = []
    i = 0
    for doc_id, tickers, doc_type, source, published, chunks in DOCS:
        for chunk_index in range(chunks):
            ts = published.timestamp()
            points.append(
                Point(
                    id=point_id(doc_id, chunk_index),
                    dense=basis(i),
                    sparse=SparseVector(
                        indices=(term(i), SHARED_TERM), values=(1.0, 0.3 + 0.05 * i)
                    ),
                    payload=IndexPayload(
                        doc_id=doc_id,
                        chunk_id=point_id(doc_id, chunk_index),
                        chunk_index=chunk_index,
                        version=1,
                        text=f"{doc_id} chunk {chunk_index}",
                        title=f"title {doc_id}",
                        url=f"https://example.test/{doc_id}",
                        source=source,
                        doc_type=doc_type,
                        tickers=tickers,
                        published_at=published,
                        indexed_ts=ts + 60.0 + i,
                    ).to_dict()
                    | {"corpus_index": i},
                )
            )
            i += 1
    return points


CORPUS = make_corpus()
BY_INDEX = {p.payload["corpus_index"]: p.id for p in CORPUS}


async def open_backend(kind: str, tmp_path: Path) -> VectorIndex:
    """An opened, empty index of ``kind`` (``edge`` in tmp_path, ``server`` in local mode)."""
    index: VectorIndex
    if kind == "edge":
        index = EdgeIndex(tmp_path / "edge")
    else:
        index = ServerIndex("contract", location=":memory:")
    await index.ensure_collection(DIM)
    return index
