"""Conversions to qdrant-client types for :mod:`index_server`, and the names of the physical
collections behind an alias (``<alias>__g<N>``, swapped by ``tickerwire reindex``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qdrant_client import models

from tickerwire.adapters.index_common import DENSE, SPARSE, FilterBuilder, stored_payload
from tickerwire.core.ports import Point, SparseVector

SERVER_SCHEMAS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "float": models.PayloadSchemaType.FLOAT,
    "integer": models.PayloadSchemaType.INTEGER,
}
SERVER_DIRECTIONS = {"asc": models.Direction.ASC, "desc": models.Direction.DESC}


class _ServerFilters(FilterBuilder[models.Condition, models.Filter]):
    def match_any(self, key: str, values: list[str] | list[int]) -> models.Condition:
        return models.FieldCondition(key=key, match=models.MatchAny(any=values))

    def in_range(self, key: str, bounds: Mapping[str, float]) -> models.Condition:
        return models.FieldCondition(key=key, range=models.Range(**bounds))

    def is_empty(self, key: str) -> models.Condition:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))

    def all_of(self, conds: list[models.Condition | models.Filter]) -> models.Filter:
        return models.Filter(must=conds)

    def any_of(self, filters: list[models.Filter]) -> models.Filter:
        return models.Filter(should=list(filters))


#: The qdrant-client filter for search filters (None when nothing is filtered).
server_filter = _ServerFilters().filter


def doc_filter(doc_id: str, keep: Sequence[str] = ()) -> models.Filter:
    """The points of ``doc_id``, except the ids in ``keep``."""
    must: list[models.Condition] = [
        models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))
    ]
    if not keep:
        return models.Filter(must=must)
    return models.Filter(must=must, must_not=[models.HasIdCondition(has_id=list(keep))])


def server_sparse(vector: SparseVector) -> models.SparseVector:
    """The qdrant-client sparse vector."""
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def server_struct(point: Point) -> models.PointStruct:
    """The qdrant-client point of ``point``."""
    return models.PointStruct(
        id=point.id,
        vector={DENSE: [float(x) for x in point.dense], SPARSE: server_sparse(point.sparse)},
        payload=stored_payload(point),
    )


#: How a physical collection behind the alias ``name`` is named: ``<name>__g<generation>``.
GENERATION_SEP = "__g"


def generation_name(alias: str, generation: int) -> str:
    """The physical collection of ``generation`` behind ``alias``."""
    return f"{alias}{GENERATION_SEP}{generation}"


def next_generation_name(alias: str, existing: Sequence[str]) -> str:
    """The first unused ``<alias>__g<N>`` above every existing one."""
    prefix = alias + GENERATION_SEP
    taken = [
        int(n[len(prefix) :])
        for n in existing
        if n.startswith(prefix) and n[len(prefix) :].isdigit()
    ]
    return generation_name(alias, max(taken, default=0) + 1)
