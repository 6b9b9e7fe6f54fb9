"""Conversions to qdrant-client types for :mod:`index_server`, and the names of the physical
collections behind an alias (``<alias>__g<N>``, swapped by ``tickerwire reindex``)."""

from __future__ import annotations

from collections.abc import Sequence

from qdrant_client import models

from tickerwire.adapters.index_common import (
    DENSE,
    SPARSE,
    AnyOfCond,
    Condition,
    IsEmptyCond,
    MatchAnyCond,
    filter_conditions,
    stored_payload,
)
from tickerwire.core.ports import Point, SearchFilters, SparseVector

SERVER_SCHEMAS = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "float": models.PayloadSchemaType.FLOAT,
    "integer": models.PayloadSchemaType.INTEGER,
}
SERVER_DIRECTIONS = {"asc": models.Direction.ASC, "desc": models.Direction.DESC}


def server_condition(cond: Condition) -> models.Condition:
    """The qdrant-client condition of one back-end-neutral condition."""
    if isinstance(cond, IsEmptyCond):
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=cond.key))
    if isinstance(cond, AnyOfCond):
        return models.Filter(
            should=[
                models.Filter(must=[server_condition(c) for c in option]) for option in cond.options
            ]
        )
    if isinstance(cond, MatchAnyCond):
        return models.FieldCondition(key=cond.key, match=models.MatchAny(any=list(cond.values)))
    return models.FieldCondition(
        key=cond.key, range=models.Range(gte=cond.gte, lt=cond.lt, lte=cond.lte)
    )


def server_filter(filters: SearchFilters | None) -> models.Filter | None:
    """The qdrant-client filter for ``filters`` (None when nothing is filtered)."""
    conds = filter_conditions(filters)
    if not conds:
        return None
    return models.Filter(must=[server_condition(c) for c in conds])


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
