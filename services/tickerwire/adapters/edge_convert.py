"""Conversion between tickerwire's neutral index shapes and Qdrant Edge's types.

Filters, points, sparse vectors, payload-index schemas and the shard configuration: everything
the Edge index hands to the binding is built here, so :mod:`index_edge` only orchestrates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

import qdrant_edge as qe

from tickerwire.adapters.index_common import DENSE, SPARSE, FilterBuilder, stored_payload
from tickerwire.core.errors import VectorIndexError
from tickerwire.core.ports import Point, SparseVector

#: Payload-index kind (index_common.PAYLOAD_INDEXES) -> Edge schema type.
EDGE_SCHEMAS = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "float": qe.PayloadSchemaType.Float,
    "integer": qe.PayloadSchemaType.Integer,
}
EDGE_DIRECTIONS = {"asc": qe.Direction.Asc, "desc": qe.Direction.Desc}


def edge_id(point_id: str) -> UUID:
    """``point_id`` as a UUID; VectorIndexError when it is not one."""
    try:
        return UUID(point_id)
    except ValueError as exc:
        raise VectorIndexError(f"point id {point_id!r} is not a UUID") from exc


#: A condition of an Edge filter.
EdgeCondition = (
    qe.FieldCondition
    | qe.IsEmptyCondition
    | qe.IsNullCondition
    | qe.HasIdCondition
    | qe.HasVectorCondition
    | qe.NestedCondition
    | qe.Filter
)


class _EdgeFilters(FilterBuilder[EdgeCondition, qe.Filter]):
    def match_any(self, key: str, values: list[str] | list[int]) -> qe.FieldCondition:
        return qe.FieldCondition(key, match=qe.MatchAny(values))

    def in_range(self, key: str, bounds: Mapping[str, float]) -> qe.FieldCondition:
        return qe.FieldCondition(key, range=qe.RangeFloat(**bounds))

    def is_empty(self, key: str) -> qe.IsEmptyCondition:
        return qe.IsEmptyCondition(key)

    def all_of(self, conds: list[EdgeCondition]) -> qe.Filter:
        return qe.Filter(must=conds)

    def any_of(self, filters: list[qe.Filter]) -> qe.Filter:
        return qe.Filter(should=list(filters))


#: The Edge filter for search filters (None when nothing is filtered).
edge_filter = _EdgeFilters().filter


def doc_filter(doc_id: str, keep: Sequence[str] = ()) -> qe.Filter:
    """The points of ``doc_id`` whose ids are not in ``keep``."""
    must: list[qe.FieldCondition] = [qe.FieldCondition("doc_id", match=qe.MatchValue(doc_id))]
    if not keep:
        return qe.Filter(must=list(must))
    return qe.Filter(must=list(must), must_not=[qe.HasIdCondition({edge_id(pid) for pid in keep})])


def edge_sparse(vector: SparseVector) -> qe.SparseVector:
    """The Edge sparse vector for ``vector``."""
    return qe.SparseVector(list(vector.indices), list(vector.values))


def edge_point(point: Point) -> qe.Point:
    """The Edge point for ``point``, its payload as stored (see index_common.stored_payload)."""
    # Per point this is on the hot path (measured, 384-d, a 15-key payload: ~45 us, nearly all
    # of it the binding converting the payload). The binding parses the id string itself (a bad
    # one fails the batch as VectorIndexError) and converts each dense element to f32 (ints and
    # numpy scalars too), so neither a UUID() nor a per-element float() (~6 us) is done here.
    dense = point.dense
    return qe.Point(
        point.id,
        {
            DENSE: dense if isinstance(dense, list) else list(dense),
            SPARSE: edge_sparse(point.sparse),
        },
        stored_payload(point),
    )


def edge_config(
    dim: int, *, indexing_threshold_kb: int | None = None, indexing_threads: int = 0
) -> qe.EdgeConfig:
    """The shard configuration: named dense (cosine) and sparse (IDF) vectors, WAL on."""
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(
            m=16, ef_construct=100, full_scan_threshold=10_000,
            max_indexing_threads=indexing_threads,
        ),
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb),
        wal_enabled=True,
    )  # fmt: skip
