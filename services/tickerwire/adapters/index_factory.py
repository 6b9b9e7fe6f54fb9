"""Composition helper: the VectorIndex the settings ask for."""

from __future__ import annotations

from pathlib import Path

from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.core.ports import VectorIndex
from tickerwire.core.settings import Settings


def open_index(settings: Settings, dim: int, edge_path: Path | None = None) -> VectorIndex:
    """Qdrant Edge at ``settings.edge_dir`` (or ``edge_path``) when ``qdrant_url`` is unset,
    else the server.

    Nothing is opened yet: the caller then awaits ``index.ensure_collection(dim)`` (which
    creates or loads the collection, and for Edge takes the directory lock) and owns the
    index until ``await index.aclose()``. ``dim`` is the dense size the caller will ensure.
    """
    del dim  # the dimension is fixed by ensure_collection(dim); kept for a uniform signature
    if settings.qdrant_url is None:
        return EdgeIndex(
            edge_path or settings.edge_dir,
            optimize_min_unindexed=settings.index_optimize_min_unindexed,
        )
    api_key = settings.qdrant_api_key
    return ServerIndex(
        settings.collection,
        url=settings.qdrant_url,
        api_key=None if api_key is None else api_key.get_secret_value(),
    )
