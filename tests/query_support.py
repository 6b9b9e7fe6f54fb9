"""Query-side test doubles: a bag-of-words embedder and a real Edge index loaded with documents."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import numpy as np

from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.core.ports import Point, Splitter
from tickerwire.pipeline.sparse import BM25Encoder

DIM = 256
SPARSE = BM25Encoder()


class BagOfWordsEmbedder:
    """Embedder double: hashed bag of terms, unit norm; shared terms make cosines high."""

    name = "bag-of-words"
    dim = DIM
    max_tokens = 512

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        raise NotImplementedError("documents are loaded as single chunks in these tests")

    def _vector(self, text: str) -> list[float]:
        vec = np.zeros(DIM)
        for term in SPARSE.tokenize(text):
            vec[int(hashlib.sha256(term.encode()).hexdigest()[:8], 16) % DIM] += 1.0
        norm = np.linalg.norm(vec)
        if norm == 0:
            vec[0], norm = 1.0, 1.0
        out: list[float] = (vec / norm).tolist()
        return out

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    async def aclose(self) -> None:
        return None


def doc(
    doc_id: str,
    text: str,
    *,
    published_at: str = "2026-11-20T12:00:00Z",
    tickers: Sequence[str] = (),
    title: str | None = None,
    doc_type: str = "news",
) -> dict[str, Any]:
    """One single-chunk document as the loader takes it."""
    return {
        "doc_id": doc_id,
        "text": text,
        "published_at": published_at,
        "tickers": list(tickers),
        "title": title or f"Title of {doc_id}",
        "doc_type": doc_type,
    }


async def load_index(path: Path, docs: Sequence[dict[str, Any]]) -> EdgeIndex:
    """An Edge index in ``path`` holding ``docs`` (one chunk each), embedded by the double."""
    index = EdgeIndex(path)
    await index.ensure_collection(DIM)
    embedder = BagOfWordsEmbedder()
    points = []
    for d in docs:
        published = datetime.fromisoformat(d["published_at"].replace("Z", "+00:00"))
        chunk_id = str(uuid5(NAMESPACE_URL, f"{d['doc_id']}#0"))
        points.append(
            Point(
                id=chunk_id,
                dense=(await embedder.embed_documents([d["text"]]))[0],
                sparse=SPARSE.encode_document(d["text"]),
                payload={
                    "doc_id": d["doc_id"],
                    "chunk_id": chunk_id,
                    "chunk_index": 0,
                    "text": d["text"],
                    "title": d["title"],
                    "url": f"https://example.test/{d['doc_id']}",
                    "source": "test",
                    "doc_type": d["doc_type"],
                    "tickers": d["tickers"],
                    "published_at": d["published_at"],
                    "published_ts": published.timestamp(),
                    "version": 1,
                    "indexed_ts": published.timestamp() + 1,
                },
            )
        )
    if points:
        await index.upsert(points)
    return index


def query_app(index: EdgeIndex, settings: Any, **app_args: Any) -> Any:
    """The query API over ``index`` as the composition root builds it (Resources), with the
    bag-of-words embedder and the offline answerer; ``app_args`` go to ``create_app``."""
    from tickerwire.query.api import create_app
    from tickerwire.query.ask import OfflineAnswerer
    from tickerwire.runtime import Resources

    res = Resources(settings=settings, embedder=BagOfWordsEmbedder(), sparse=SPARSE, index=index)
    search, ask = res.search_service(), res.ask_service(OfflineAnswerer())
    return create_app(settings=settings, search=search, ask=ask, **app_args)
