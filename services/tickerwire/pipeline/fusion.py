"""Client-side fusion of ranked candidate lists (dense and sparse), as pure functions.

Each list holds ``(key, score)`` pairs, best first. :func:`rrf_fuse` reproduces Qdrant's weighted
reciprocal rank fusion, :func:`dbsf_fuse` its distribution-based score fusion; the others are
fusions Qdrant does not offer. ``bench/fusion_sweep.py`` compares them all; an index adapter can
fetch the two prefetch lists and call one of these to fuse them.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tickerwire.core.ports import HybridParams, ScoredHit

K = TypeVar("K", bound=Hashable)

Candidates = Sequence[tuple[K, float]]


@dataclass(frozen=True, slots=True)
class FusedHit(Generic[K]):
    """One fused result: the candidate's key and its fused score."""

    key: K
    score: float


def _ranked(scores: dict[K, float]) -> list[FusedHit[K]]:
    # Stable: equal scores keep the order in which the candidates were first seen.
    return [FusedHit(k, v) for k, v in sorted(scores.items(), key=lambda kv: -kv[1])]


def _check_weights(lists: Sequence[object], weights: Sequence[float]) -> None:
    if len(weights) != len(lists):
        raise ValueError(f"{len(weights)} weights for {len(lists)} candidate lists")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError("weights must be finite and >= 0")


def rrf_position_score(position: int, k: int, weight: float) -> float:
    """Qdrant's weighted RRF score of a 0-based ``position``: ``1 / ((position+1)/weight + k-1)``.

    With weight 1 this is the classic ``1 / (k + rank)`` with a 1-based rank (less one on k); a
    weight ``w`` divides the rank by ``w``. A weight of 0 contributes nothing.
    """
    if weight <= 0:
        return 0.0
    return 1.0 / ((position + 1) / weight + k - 1)


def rrf_fuse(
    lists: Sequence[Candidates[K]], *, k: int, weights: Sequence[float]
) -> list[FusedHit[K]]:
    """Weighted reciprocal rank fusion: only positions count, scores are ignored."""
    if k < 1:
        raise ValueError("k must be >= 1")
    _check_weights(lists, weights)
    scores: dict[K, float] = {}
    for candidates, weight in zip(lists, weights, strict=True):
        for position, (key, _) in enumerate(candidates):
            scores[key] = scores.get(key, 0.0) + rrf_position_score(position, k, weight)
    return _ranked(scores)


def _distribution_normalized(values: Sequence[float]) -> list[float]:
    """Scores mapped from [mean - 3 sd, mean + 3 sd] onto [0, 1] (clipped); 0.5 when all equal."""
    if not values:
        return []
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if sd == 0:
        return [0.5] * len(values)
    low, span = mean - 3 * sd, 6 * sd
    return [min(1.0, max(0.0, (v - low) / span)) for v in values]


def dbsf_fuse(lists: Sequence[Candidates[K]], weights: Sequence[float]) -> list[FusedHit[K]]:
    """Distribution-based score fusion: each list's scores normalized by mean ± 3 sd, summed."""
    _check_weights(lists, weights)
    scores: dict[K, float] = {}
    for candidates, weight in zip(lists, weights, strict=True):
        normalized = _distribution_normalized([s for _, s in candidates])
        for (key, _), value in zip(candidates, normalized, strict=True):
            scores[key] = scores.get(key, 0.0) + weight * value
    return _ranked(scores)


def _min_max(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def normalized_score_fuse(
    dense: Candidates[K], sparse: Candidates[K], *, dense_weight: float
) -> list[FusedHit[K]]:
    """``a·minmax(cosine) + (1-a)·minmax(bm25)`` over the union (a missing score counts 0)."""
    if not 0 <= dense_weight <= 1:
        raise ValueError("dense_weight must be in [0, 1]")
    scores: dict[K, float] = {}
    for candidates, weight in ((dense, dense_weight), (sparse, 1.0 - dense_weight)):
        for (key, _), value in zip(candidates, _min_max([s for _, s in candidates]), strict=True):
            scores[key] = scores.get(key, 0.0) + weight * value
    return _ranked(scores)


def max_normalized_fuse(
    dense: Candidates[K], sparse: Candidates[K], *, dense_weight: float
) -> list[FusedHit[K]]:
    """``a·cosine/max(cosine) + (1-a)·bm25/max(bm25)`` over the union (a missing score counts 0).

    Each side's scores are divided by its best one, so a side's ranking keeps its own shape:
    a decisive BM25 match stays far ahead, and a flat ranking (look-alike pages of one filing)
    stays flat instead of being stretched to [0, 1] as min-max does. Unlike min-max, a deeper
    candidate list adds candidates without rescaling the ones already there. Scores at or
    below 0 count 0.
    """
    if not 0 <= dense_weight <= 1:
        raise ValueError("dense_weight must be in [0, 1]")
    scores: dict[K, float] = {}
    for candidates, weight in ((dense, dense_weight), (sparse, 1.0 - dense_weight)):
        top = max((s for _, s in candidates), default=0.0)
        for key, value in candidates:
            share = max(0.0, value) / top if top > 0 else 0.0
            scores[key] = scores.get(key, 0.0) + weight * share
    return _ranked(scores)


#: Sparse weight of adaptive fusion when BM25's top score does not stand out at all, and when it
#: stands out fully (a lone strong match).
ADAPTIVE_SPARSE_MIN = 0.5
ADAPTIVE_SPARSE_MAX = 3.0


def adaptive_weights(sparse_scores: Sequence[float], *, depth: int = 10) -> tuple[float, float]:
    """(dense, sparse) weights for one query from how decisive its BM25 ranking is.

    ``spread = (s1 - s_depth) / s1`` is near 0 when the best keyword matches score alike (the
    query's words are everywhere: trust the dense side) and near 1 when a few stand out (rare,
    specific words matched: trust BM25). The sparse weight runs linearly from
    ADAPTIVE_SPARSE_MIN to ADAPTIVE_SPARSE_MAX with it; no sparse hit gives (1, 0).
    """
    if not sparse_scores or sparse_scores[0] <= 0:
        return 1.0, 0.0
    top = sparse_scores[0]
    floor = sparse_scores[min(depth, len(sparse_scores)) - 1] if len(sparse_scores) > 1 else 0.0
    spread = max(0.0, min(1.0, (top - floor) / top))
    return 1.0, ADAPTIVE_SPARSE_MIN + (ADAPTIVE_SPARSE_MAX - ADAPTIVE_SPARSE_MIN) * spread


def adaptive_dense_weight(sparse_scores: Sequence[float], *, depth: int = 10) -> float:
    """The dense weight ``a`` of :func:`normalized_score_fuse` for one query.

    The same decisiveness signal as :func:`adaptive_weights`, mapped to ``a`` in
    [ADAPTIVE_ALPHA_MIN, ADAPTIVE_ALPHA_MAX]: a flat BM25 ranking leans on the dense scores, a
    decisive one on BM25. No sparse hit gives 1 (dense only).
    """
    _, sparse = adaptive_weights(sparse_scores, depth=depth)
    if sparse == 0:
        return 1.0
    share = (sparse - ADAPTIVE_SPARSE_MIN) / (ADAPTIVE_SPARSE_MAX - ADAPTIVE_SPARSE_MIN)
    return ADAPTIVE_ALPHA_MAX - (ADAPTIVE_ALPHA_MAX - ADAPTIVE_ALPHA_MIN) * share


#: Dense weight of adaptive score fusion for the most decisive and the flattest BM25 rankings.
ADAPTIVE_ALPHA_MIN = 0.2
ADAPTIVE_ALPHA_MAX = 0.7


def fuse_candidates(
    dense: Candidates[K], sparse: Candidates[K], params: HybridParams
) -> list[FusedHit[K]]:
    """Fuse two candidate lists by ``params.fusion`` (every method, "rrf" included)."""
    weights = [params.dense_weight, params.sparse_weight]
    if params.fusion == "rrf":
        return rrf_fuse([dense, sparse], k=params.rrf_k, weights=weights)
    if params.fusion == "dbsf":
        return dbsf_fuse([dense, sparse], weights)
    if params.fusion == "minmax":
        return normalized_score_fuse(dense, sparse, dense_weight=params.dense_share)
    if params.fusion == "maxnorm":
        return max_normalized_fuse(dense, sparse, dense_weight=params.dense_share)
    if params.fusion == "adaptive":
        share = adaptive_dense_weight([score for _, score in sparse])
        return normalized_score_fuse(dense, sparse, dense_weight=share)
    raise ValueError(f"unknown fusion method {params.fusion!r}")


def fuse_hits(
    dense: Sequence[ScoredHit], sparse: Sequence[ScoredHit], params: HybridParams, limit: int
) -> list[ScoredHit]:
    """The top ``limit`` of two hit lists (each best first) fused by ``params.fusion``.

    For an index adapter: run the filtered dense and sparse searches with ``params.prefetch``
    hits each, then call this. A point found by both keeps the dense hit's payload.
    """
    by_id = {h.id: h for h in sparse} | {h.id: h for h in dense}
    fused = fuse_candidates(
        [(h.id, h.score) for h in dense], [(h.id, h.score) for h in sparse], params
    )
    return [ScoredHit(id=f.key, score=f.score, payload=by_id[f.key].payload) for f in fused[:limit]]
