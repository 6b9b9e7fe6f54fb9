"""Ports: the small protocols the stages and the query service depend on.

Adapters implement them; pipeline code and use cases only ever see these types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

SearchMode = Literal["hybrid", "dense", "sparse"]


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector: sorted unique term indices and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Point:
    """One chunk as stored in the index: id (uuid string), vectors and payload.

    The payload carries at least ``doc_id``, ``chunk_index``, ``text``, ``title``, ``url``,
    ``source``, ``doc_type``, ``tickers``, ``published_at`` (RFC 3339), ``published_ts`` (epoch
    seconds, float), ``version`` and ``indexed_ts`` (epoch seconds, float); when the document
    has them, ``company``, ``fiscal_period``, ``fiscal_year`` (int) and, for ``market_stats``,
    ``price``, ``change``, ``change_pct`` and ``volume`` (floats, orderable with ``top_by``).
    """

    id: str
    dense: Sequence[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PeriodScope:
    """The points that may belong to one fiscal or calendar year.

    A point with a ``fiscal_year`` belongs when it is ``year``; a point without one when it was
    published in ``[published_from, published_before)``. Query understanding narrows a search
    to an unambiguous period with it, in the index, so every candidate of the ranking is in scope.
    """

    year: int
    published_from: datetime
    published_before: datetime


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Filters applied before ranking; ``as_of`` hides everything published after it.

    Each tuple matches any of its values; ``companies`` and ``fiscal_periods`` match the payload
    strings exactly, ``fiscal_years`` the integer ``fiscal_year``; ``period`` is a
    :class:`PeriodScope`.
    """

    tickers: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    companies: tuple[str, ...] = ()
    fiscal_periods: tuple[str, ...] = ()
    fiscal_years: tuple[int, ...] = ()
    period: PeriodScope | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None
    as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScoredHit:
    """A retrieved point with its score and payload."""

    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Watermark:
    """The newest published-at and indexed-at a query could see (epoch seconds, or None)."""

    published_ts: float | None
    indexed_ts: float | None


#: How hybrid search fuses its dense and sparse candidates (pipeline/fusion.py, docs/retrieval.md):
#: "rrf" is Qdrant's weighted RRF, in the index; the others fuse the two candidate lists
#: client-side (pipeline.fusion.fuse_hits).
FusionMethod = Literal["rrf", "dbsf", "minmax", "maxnorm", "adaptive"]


@dataclass(frozen=True, slots=True)
class HybridParams:
    """How dense and sparse rankings are fused.

    ``rrf_k`` and the weights apply to ``fusion="rrf"`` (and the weights to "dbsf");
    ``dense_share`` is the dense side's share of "minmax" score fusion.
    """

    rrf_k: int = 60
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    prefetch: int = 100
    fusion: FusionMethod = "rrf"
    dense_share: float = 0.5


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """One search of a :class:`VectorIndex`: ``mode`` needs ``dense`` (dense, hybrid) and
    ``sparse`` (sparse, hybrid); ``hybrid`` says how a hybrid search fuses its two sides."""

    mode: SearchMode
    dense: Sequence[float] | None = None
    sparse: SparseVector | None = None
    filters: SearchFilters = SearchFilters()
    limit: int = 10
    hybrid: HybridParams = HybridParams()


@runtime_checkable
class Splitter(Protocol):
    """Splits text into chunks that fit a token budget (semantic-text-splitter's shape)."""

    def chunks(self, text: str) -> list[str]: ...


@runtime_checkable
class SparseEncoder(Protocol):
    """Text to sparse (BM25-style) vectors; documents and queries share one term space."""

    def encode_document(self, text: str) -> SparseVector:
        """The vector of a passage as it is indexed."""
        ...

    def encode_query(self, text: str) -> SparseVector:
        """The vector of a search query, matching :meth:`encode_document`'s terms."""
        ...

    def tokenize(self, text: str) -> list[str]:
        """The terms of ``text`` as the vectors count them (for term overlap in answers)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Dense text embeddings. Implementations never block the event loop."""

    @property
    def name(self) -> str:
        """Stable model id, stored with every vector (e.g. ``all-MiniLM-L6-v2-int8``)."""
        ...

    @property
    def dim(self) -> int:
        """Dimension of the dense vectors."""
        ...

    @property
    def max_tokens(self) -> int:
        """Longest input the model was trained on, in its own tokens."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's tokenizer (no special tokens)."""
        ...

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        """A token-aware splitter that uses this model's tokenizer."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages; one unit-norm vector per text, in order."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed one search query with the same model."""
        ...

    async def aclose(self) -> None:
        """Release resources; idempotent."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """The vector store behind the index stage and the query service."""

    @property
    def backend(self) -> str:
        """``edge`` or ``server``; used as a metric label."""
        ...

    async def ensure_collection(self, dim: int) -> None:
        """Create the collection and its payload indexes if missing; never recreate it."""
        ...

    async def upsert(self, points: Sequence[Point]) -> None:
        """Write points; idempotent for the same ids. Returns once the write is durable."""
        ...

    async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        """Apply commit records as one write: for each ``(doc_id, keep_ids)``, in order, delete
        every point of ``doc_id`` whose id is not in ``keep_ids`` (all of them when it is empty;
        nothing for a document without points). A document may appear more than once.

        Returns the total number of points deleted by the whole call (not per document). The
        call is idempotent: replaying it deletes nothing more. When it raises, any prefix of
        the commits may have been applied; retrying the same call is safe.
        """
        ...

    async def refresh_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Write ``fields`` into the payload of each ``(point_id, fields)``, merged with what it
        stores (other keys stay); a point that is not there is skipped. Idempotent."""
        ...

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        """Every point of ``doc_id``, ordered by ``chunk_index`` (score is 0)."""
        ...

    async def search(self, query: IndexQuery) -> list[ScoredHit]:
        """Top ``query.limit`` points for its mode; hybrid fuses the filtered dense and sparse
        candidates as ``query.hybrid`` says. Raises ValidationError when a vector the mode needs
        is missing or the limit is below 1."""
        ...

    async def top_by(
        self, *, field: str, direction: Literal["asc", "desc"], filters: SearchFilters, limit: int
    ) -> list[ScoredHit]:
        """Points matching ``filters`` ordered by the numeric payload ``field`` (Qdrant order-by),
        at most ``limit``; points without the field are not returned; score is the field value."""
        ...

    async def count(self, filters: SearchFilters | None = None) -> int:
        """Exact number of points matching ``filters`` (all when None)."""
        ...

    async def watermark(self) -> Watermark:
        """Newest ``published_ts`` and ``indexed_ts`` in the collection."""
        ...

    async def needs_optimize(self) -> bool:
        """True when :meth:`optimize` is worth running now (always False for a server)."""
        ...

    async def optimize(self) -> None:
        """Build or merge index structures without stalling the event loop."""
        ...

    async def adopt_handover(self) -> bool:
        """Swap in a collection rebuilt by ``tickerwire reindex`` when it asks this process to
        (Edge: the process that owns the shard does the swap); True once swapped. Always
        False for a server, where reindex swaps the alias itself."""
        ...

    async def aclose(self) -> None:
        """Flush and release resources; idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class AnswerUnit:
    """One sentence or table row of a retrieved chunk, scored against the question."""

    text: str
    cosine: float
    overlap: float
    position: int


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk as an answer model sees it: numbered ``n`` (1-based) for citations."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    published_at: str | None
    text: str
    units: tuple[AnswerUnit, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens an answer model spent (the last item of an answer stream, when it knows them)."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None = None


@runtime_checkable
class AnswerModel(Protocol):
    """Writes an answer to a question from numbered passages, citing them as ``[n]``."""

    @property
    def name(self) -> str:
        """``offline`` or ``openai:<model>``."""
        ...

    def answer(self, question: str, passages: Sequence[Passage]) -> AsyncIterator[str | Usage]:
        """The answer as text deltas, in order, then optionally one :class:`Usage`."""
        ...

    async def aclose(self) -> None:
        """Release resources; idempotent."""
        ...
