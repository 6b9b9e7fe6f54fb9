"""Client-side fusion of dense and sparse candidate lists (pipeline/fusion.py)."""

from __future__ import annotations

import pytest

from tickerwire.core.ports import HybridParams, ScoredHit
from tickerwire.pipeline.fusion import (
    ADAPTIVE_ALPHA_MAX,
    ADAPTIVE_ALPHA_MIN,
    ADAPTIVE_SPARSE_MAX,
    ADAPTIVE_SPARSE_MIN,
    adaptive_dense_weight,
    adaptive_weights,
    dbsf_fuse,
    fuse_candidates,
    fuse_hits,
    max_normalized_fuse,
    normalized_score_fuse,
    rrf_fuse,
    rrf_position_score,
)

DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
SPARSE = [("c", 12.0), ("d", 4.0), ("a", 3.0)]


def keys(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.key for h in hits]


def test_rrf_position_score_matches_qdrant_formula() -> None:
    # 1 / ((position + 1) / weight + k - 1): weight 1 is the classic 1 / (k + rank).
    assert rrf_position_score(0, 60, 1.0) == pytest.approx(1 / 60)
    assert rrf_position_score(4, 2, 1.0) == pytest.approx(1 / 6)
    assert rrf_position_score(5, 1, 3.0) == pytest.approx(1 / 2)
    assert rrf_position_score(0, 1, 0.0) == 0.0


def test_rrf_equal_weights_rewards_agreement() -> None:
    fused = rrf_fuse([DENSE, SPARSE], k=60, weights=[1.0, 1.0])
    assert keys(fused)[:2] == ["a", "c"]  # in both lists; "a" ranks higher on average
    assert set(keys(fused)) == {"a", "b", "c", "d"}
    scores = [h.score for h in fused]
    assert scores == sorted(scores, reverse=True)


def test_rrf_weight_shifts_the_ranking_towards_one_side() -> None:
    assert keys(rrf_fuse([DENSE, SPARSE], k=1, weights=[1.0, 3.0]))[0] == "c"
    assert keys(rrf_fuse([DENSE, SPARSE], k=1, weights=[3.0, 1.0]))[0] == "a"
    # A zero weight drops that list's contribution: only dense order remains for its items.
    assert keys(rrf_fuse([DENSE, SPARSE], k=10, weights=[1.0, 0.0]))[:3] == ["a", "b", "c"]


def test_fusion_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="weights"):
        rrf_fuse([DENSE, SPARSE], k=1, weights=[1.0])
    with pytest.raises(ValueError, match=">= 0"):
        dbsf_fuse([DENSE, SPARSE], [1.0, -1.0])
    with pytest.raises(ValueError, match="k must"):
        rrf_fuse([DENSE], k=0, weights=[1.0])
    with pytest.raises(ValueError, match="dense_weight"):
        normalized_score_fuse(DENSE, SPARSE, dense_weight=1.5)


def test_dbsf_normalizes_each_list_by_its_distribution() -> None:
    fused = dbsf_fuse([DENSE, SPARSE], [1.0, 1.0])
    # dense: a .704, b .5, c .296; sparse: c .734, d .403, a .362 (mean ± 3 sd onto [0, 1]).
    assert keys(fused) == ["a", "c", "b", "d"]
    assert fused[0].score == pytest.approx(1.066, abs=1e-3)
    assert all(0.0 <= h.score <= 2.0 for h in fused)
    # Scaling one list's scores does not change the fusion (normalization is per list).
    scaled = [(k, s * 100) for k, s in SPARSE]
    assert keys(dbsf_fuse([DENSE, scaled], [1.0, 1.0])) == keys(fused)


def test_dbsf_handles_empty_and_constant_lists() -> None:
    assert dbsf_fuse([[], []], [1.0, 1.0]) == []
    fused = dbsf_fuse([[("x", 0.5), ("y", 0.5)], []], [1.0, 1.0])
    assert [h.score for h in fused] == [0.5, 0.5]


def test_normalized_score_fuse_interpolates_min_max_scores() -> None:
    only_dense = normalized_score_fuse(DENSE, SPARSE, dense_weight=1.0)
    assert keys(only_dense)[:3] == ["a", "b", "c"]
    only_sparse = normalized_score_fuse(DENSE, SPARSE, dense_weight=0.0)
    assert keys(only_sparse)[0] == "c"
    half = {h.key: h.score for h in normalized_score_fuse(DENSE, SPARSE, dense_weight=0.5)}
    # a: dense 1.0, sparse (3-3)/(12-3) = 0 → 0.5; c: dense 0, sparse 1 → 0.5.
    assert half["a"] == pytest.approx(0.5)
    assert half["c"] == pytest.approx(0.5)


def test_adaptive_weights_trust_a_decisive_sparse_ranking() -> None:
    assert adaptive_weights([]) == (1.0, 0.0)
    flat = adaptive_weights([5.0] * 10)
    assert flat == (1.0, ADAPTIVE_SPARSE_MIN)
    peaked = adaptive_weights([20.0] + [0.0] * 9)
    assert peaked == (1.0, ADAPTIVE_SPARSE_MAX)
    middle = adaptive_weights([10.0] + [5.0] * 9)[1]
    assert ADAPTIVE_SPARSE_MIN < middle < ADAPTIVE_SPARSE_MAX


def test_adaptive_dense_weight_leans_on_bm25_when_it_is_decisive() -> None:
    assert adaptive_dense_weight([]) == 1.0
    assert adaptive_dense_weight([5.0] * 10) == pytest.approx(ADAPTIVE_ALPHA_MAX)
    assert adaptive_dense_weight([20.0] + [0.0] * 9) == pytest.approx(ADAPTIVE_ALPHA_MIN)


def _hits(pairs: list[tuple[str, float]], side: str) -> list[ScoredHit]:
    return [ScoredHit(id=k, score=s, payload={"doc_id": k, "side": side}) for k, s in pairs]


def test_fuse_hits_dispatches_on_the_method_and_keeps_payloads() -> None:
    dense, sparse = _hits(DENSE, "dense"), _hits(SPARSE, "sparse")
    rrf = fuse_hits(dense, sparse, HybridParams(fusion="rrf", rrf_k=60), limit=3)
    assert [h.id for h in rrf] == keys(rrf_fuse([DENSE, SPARSE], k=60, weights=[1.0, 1.0]))[:3]
    assert rrf[0].payload == {"doc_id": "a", "side": "dense"}  # found by both: dense payload
    only_sparse = fuse_hits(dense, sparse, HybridParams(fusion="minmax", dense_share=0.0), 10)
    assert only_sparse[0].id == "c"
    assert {h.id: h.payload["side"] for h in only_sparse}["d"] == "sparse"
    dbsf = fuse_hits(dense, sparse, HybridParams(fusion="dbsf"), limit=10)
    assert [h.id for h in dbsf] == ["a", "c", "b", "d"]
    adaptive = fuse_hits(dense, sparse, HybridParams(fusion="adaptive"), limit=2)
    assert len(adaptive) == 2
    assert fuse_hits([], [], HybridParams(fusion="adaptive"), limit=5) == []


def test_fuse_candidates_rejects_an_unknown_method() -> None:
    params = HybridParams(fusion="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse_candidates(DENSE, SPARSE, params)


def test_max_normalized_fuse_divides_each_side_by_its_best_score() -> None:
    fused = {h.key: h.score for h in max_normalized_fuse(DENSE, SPARSE, dense_weight=0.5)}
    # a: 0.5·0.9/0.9 + 0.5·3/12; c: 0.5·0.7/0.9 + 0.5·12/12; d: only sparse, 0.5·4/12.
    assert fused["a"] == pytest.approx(0.5 + 0.125)
    assert fused["c"] == pytest.approx(0.5 * 0.7 / 0.9 + 0.5)
    assert fused["d"] == pytest.approx(0.5 * 4 / 12)
    assert keys(max_normalized_fuse(DENSE, SPARSE, dense_weight=0.5))[:2] == ["c", "a"]


def test_max_normalized_fuse_keeps_scores_when_the_list_gets_deeper() -> None:
    shallow = {h.key: h.score for h in max_normalized_fuse(DENSE, SPARSE, dense_weight=0.4)}
    deeper = max_normalized_fuse([*DENSE, ("e", 0.1)], [*SPARSE, ("f", 0.5)], dense_weight=0.4)
    # Min-max would rescale every score by the new minimum; dividing by the best does not.
    assert {h.key: h.score for h in deeper if h.key in shallow} == pytest.approx(shallow)


def test_max_normalized_fuse_handles_empty_and_non_positive_lists() -> None:
    assert max_normalized_fuse([], [], dense_weight=0.5) == []
    only_sparse = max_normalized_fuse([("a", 0.0), ("b", -0.2)], SPARSE, dense_weight=0.5)
    assert keys(only_sparse)[0] == "c"
    with pytest.raises(ValueError, match="dense_weight"):
        max_normalized_fuse(DENSE, SPARSE, dense_weight=1.5)
