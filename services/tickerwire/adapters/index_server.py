"""VectorIndex on a Qdrant server or cluster, through the async ``qdrant-client``.

``location=":memory:"`` or ``path=`` runs qdrant-client's local mode instead: the same client
calls a server receives, used as the test double for this path (far too slow to serve).
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from tickerwire.adapters import index_common as common
from tickerwire.adapters.index_common import SearchTemplate
from tickerwire.adapters.server_convert import (
    SERVER_DIRECTIONS,
    SERVER_SCHEMAS,
    doc_filter,
    generation_name,
    server_filter,
    server_sparse,
    server_struct,
)
from tickerwire.core.closing import AsyncClosing
from tickerwire.core.errors import ConfigError, IndexUnavailableError, VectorIndexError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import INDEX_DELETES, INDEX_POINTS
from tickerwire.core.ports import IndexQuery, Point, ScoredHit, SearchFilters, Watermark

BACKEND = "server"
_T = TypeVar("_T")
log = get_logger(__name__)


def _create_alias(alias: str, physical: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=physical, alias_name=alias)
    )


class ServerIndex(SearchTemplate, AsyncClosing):
    """VectorIndex over one collection of a Qdrant server (or qdrant-client local mode).

    The server optimizes in the background, so :meth:`optimize` does nothing and
    :meth:`needs_optimize` is always False. Writes wait for the server's acknowledgement.
    """

    def __init__(
        self,
        collection: str,
        *,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        path: str | None = None,
        timeout: int | None = None,
        aliased: bool = True,
        client: AsyncQdrantClient | None = None,
    ) -> None:
        """Give ``url`` (+ ``api_key``) for a server; ``location=":memory:"`` or ``path`` for
        local mode; or the ``client`` of another index (see :meth:`sibling`).

        ``aliased``: ``collection`` is an alias (created with a first physical collection
        ``<collection>__g1`` behind it), so that ``tickerwire reindex`` can swap a rebuilt
        collection in atomically; an existing plain collection of that name is used as it is.
        ``aliased=False``: ``collection`` is a physical collection (a rebuild's target).
        """
        self._collection = collection
        self._aliased = aliased
        self._owns_client = client is None
        if client is None:
            if url is None and location is None and path is None:
                raise ConfigError("ServerIndex needs url=, location=':memory:' or path=")
            client = AsyncQdrantClient(
                url=url, api_key=api_key, location=location, path=path, timeout=timeout
            )
        self._local = url is None
        self._client = client
        self._closed = False

    def sibling(self, collection: str) -> ServerIndex:
        """An index over the physical ``collection`` on this index's client (not closed by
        it)."""
        twin = ServerIndex(collection, aliased=False, client=self._client)
        twin._local = self._local
        return twin

    @property
    def backend(self) -> str:
        """``server``."""
        return BACKEND

    async def _call(self, awaitable: Awaitable[_T]) -> _T:
        """Await a client call, mapping transport faults to IndexUnavailableError (retriable)."""
        try:
            return await awaitable
        except ResourceExhaustedResponse as exc:
            raise IndexUnavailableError(
                f"Qdrant is overloaded: {exc}", retry_after=exc.retry_after_s
            ) from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and (exc.status_code >= 500 or exc.status_code == 429):
                raise IndexUnavailableError(f"Qdrant answered {exc.status_code}") from exc
            raise VectorIndexError(f"Qdrant rejected the call: {exc}") from exc
        except (ResponseHandlingException, httpx.TransportError, TimeoutError) as exc:
            raise IndexUnavailableError(f"Qdrant did not answer: {exc}") from exc
        except QdrantException as exc:
            raise VectorIndexError(f"Qdrant failed: {exc}") from exc

    async def ensure_collection(self, dim: int) -> None:
        """Create the collection (and its alias) and payload indexes when missing; never
        recreate one.

        Raises ConfigError when the existing collection's dense size differs from ``dim``.
        """
        name = self._collection
        if self._aliased:
            found = await self.live_collection()  # the alias's target, or a plain collection
            physical = found or generation_name(name, 1)
            created = found is None
        else:
            physical = name
            created = not await self._call(self._client.collection_exists(name))
        if created:
            await self._create(physical, dim)
            if self._aliased:
                try:
                    await self._call(
                        self._client.update_collection_aliases(
                            change_aliases_operations=[_create_alias(name, physical)]
                        )
                    )
                except VectorIndexError:
                    if await self.live_collection() is None:
                        raise  # not another process starting at the same time
            alias = name if self._aliased else None
            log.info("qdrant_collection_created", collection=physical, alias=alias)
        else:
            info = await self._call(self._client.get_collection(physical))
            vectors = info.config.params.vectors
            size = (
                vectors[common.DENSE].size
                if isinstance(vectors, dict) and common.DENSE in vectors
                else None
            )
            if size != dim:
                raise ConfigError(f"collection {physical!r} has dense size {size}, not {dim}")
        with warnings.catch_warnings():
            # Local mode warns that payload indexes have no effect there; the server needs them.
            if self._local:
                warnings.filterwarnings("ignore", "Payload indexes have no effect", UserWarning)
            for field, kind in common.PAYLOAD_INDEXES:
                await self._call(
                    self._client.create_payload_index(
                        physical, field, field_schema=SERVER_SCHEMAS[kind], wait=True
                    )
                )

    async def _create(self, physical: str, dim: int) -> None:
        """Create ``physical``; another process creating it at the same moment is fine."""
        try:
            await self._create_now(physical, dim)
        except VectorIndexError:
            if not await self._call(self._client.collection_exists(physical)):
                raise

    async def _create_now(self, physical: str, dim: int) -> None:
        await self._call(
            self._client.create_collection(
                physical,
                vectors_config={
                    common.DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    common.SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
        )

    # --- re-index: the alias and its collections ------------------------------------------------

    async def live_collection(self) -> str | None:
        """The physical collection this index's name stands for: the alias's target, the
        collection itself when it is a plain one, None when neither exists."""
        aliases = await self._call(self._client.get_aliases())
        for alias in aliases.aliases:
            if alias.alias_name == self._collection:
                return alias.collection_name
        exists = await self._call(self._client.collection_exists(self._collection))
        return self._collection if exists else None

    async def collections(self) -> list[str]:
        """Every collection name on the server."""
        response = await self._call(self._client.get_collections())
        return sorted(c.name for c in response.collections)

    async def swap_alias(self, physical: str) -> str:
        """Point the alias at ``physical`` in one atomic request; returns the collection it
        pointed at before. A search through the alias sees the old collection or the new one,
        never neither."""
        old = await self.live_collection()
        if old is None or old == self._collection:
            raise ConfigError(
                f"{self._collection!r} is a plain collection, not an alias, so it cannot be "
                "swapped atomically; see docs/retrieval.md (Re-index) to move it behind one"
            )
        await self._call(
            self._client.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=self._collection)
                    ),
                    _create_alias(self._collection, physical),
                ]
            )
        )
        log.info("qdrant_alias_swapped", alias=self._collection, old=old, new=physical)
        return old

    async def drop_collection(self, physical: str) -> None:
        """Delete the physical collection ``physical``."""
        await self._call(self._client.delete_collection(physical))

    async def upsert(self, points: Sequence[Point]) -> None:
        """Write points (idempotent per id); returns once Qdrant acknowledged the write."""
        if not points:
            return
        structs = [server_struct(p) for p in points]
        with common.timed_write(BACKEND, "upsert", upserted=len(points)):
            await self._call(self._client.upsert(self._collection, structs, wait=True))

    async def refresh_payloads(self, updates: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """One ``batch_update_points`` request: a ``set_payload`` per point, selected by a
        has-id filter so that a missing point is skipped, ``wait=True``."""
        operations: list[models.UpdateOperation] = [
            models.SetPayloadOperation(
                set_payload=models.SetPayload(
                    payload=common.stored_fields(fields),
                    filter=models.Filter(must=[models.HasIdCondition(has_id=[point_id])]),
                )
            )
            for point_id, fields in updates
        ]
        if not operations:
            return
        with common.timed_write(BACKEND, "payload"):
            await self._call(
                self._client.batch_update_points(self._collection, operations, wait=True)
            )

    async def apply_commits(self, commits: Sequence[tuple[str, Sequence[str]]]) -> int:
        """Apply the commits in order; return how many points went.

        One exact count of the points the whole call will delete (one filter: per document,
        the points outside the intersection of its keep lists), then, only when that is not
        zero, one ``batch_update_points`` request with a filtered ``DeleteOperation`` per commit,
        in order, ``wait=True``. So a call costs one request when it deletes nothing (a new
        document's commit) and two otherwise, whatever the number of commits. The count is
        exact unless another writer touches the same documents in between, which the
        one-writer-per-partition design rules out. An empty call is a no-op.
        """
        batch = [(doc_id, tuple(keep)) for doc_id, keep in commits]
        if not batch:
            return 0
        survivors: dict[str, set[str]] = {}
        for doc_id, keep in batch:
            kept = set(keep)
            survivors[doc_id] = survivors[doc_id] & kept if doc_id in survivors else kept
        doomed_filter = models.Filter(
            should=[doc_filter(doc_id, sorted(kept)) for doc_id, kept in survivors.items()]
        )
        with common.timed_write(BACKEND, "delete"):
            doomed = (
                await self._call(
                    self._client.count(self._collection, count_filter=doomed_filter, exact=True)
                )
            ).count
            if doomed:
                operations: list[models.UpdateOperation] = [
                    models.DeleteOperation(delete=models.FilterSelector(filter=doc_filter(d, k)))
                    for d, k in batch
                ]
                await self._call(
                    self._client.batch_update_points(self._collection, operations, wait=True)
                )
        INDEX_DELETES.labels(BACKEND).inc(doomed)
        return doomed

    async def _scroll(self, flt: models.Filter | None, payload: bool) -> list[ScoredHit]:
        hits: list[ScoredHit] = []
        offset: Any = None
        while True:
            records, offset = await self._call(
                self._client.scroll(
                    self._collection,
                    scroll_filter=flt,
                    limit=common.SCROLL_PAGE,
                    offset=offset,
                    with_payload=payload,
                )
            )
            hits.extend(common.to_hit(r.id, 0.0, r.payload) for r in records)
            if offset is None:
                return hits

    async def document_point_ids(self, doc_id: str) -> set[str]:
        """Ids of the points stored for ``doc_id``."""
        return {h.id for h in await self._scroll(doc_filter(doc_id), False)}

    async def get_document(self, doc_id: str) -> list[ScoredHit]:
        """Every point of ``doc_id`` with its payload, ordered by ``chunk_index``."""
        return common.by_chunk_index(await self._scroll(doc_filter(doc_id), True))

    async def all_point_ids(self) -> set[str]:
        """Every point id in the collection."""
        return {h.id for h in await self._scroll(None, False)}

    async def count(self, filters: SearchFilters | None = None) -> int:
        """Exact number of points matching ``filters``; the unfiltered count sets INDEX_POINTS."""
        result = await self._call(
            self._client.count(self._collection, count_filter=server_filter(filters), exact=True)
        )
        if filters is None:
            INDEX_POINTS.labels(BACKEND).set(result.count)
        return result.count

    async def count_documents(self) -> int:
        """Distinct documents in the index: every document has exactly one chunk 0."""
        chunk0 = models.FieldCondition(key="chunk_index", match=models.MatchValue(value=0))
        result = await self._call(
            self._client.count(
                self._collection, count_filter=models.Filter(must=[chunk0]), exact=True
            )
        )
        return result.count

    async def _query(self, query: IndexQuery) -> list[ScoredHit]:
        flt = server_filter(query.filters)
        dense_q = None if query.dense is None else [float(x) for x in query.dense]
        sparse_q = None if query.sparse is None else server_sparse(query.sparse)
        if query.mode == "hybrid":
            assert dense_q is not None and sparse_q is not None
            depth = max(query.hybrid.prefetch, query.limit)
            response = await self._call(
                self._client.query_points(
                    self._collection,
                    prefetch=[
                        models.Prefetch(query=dense_q, using=common.DENSE, limit=depth, filter=flt),
                        models.Prefetch(
                            query=sparse_q, using=common.SPARSE, limit=depth, filter=flt
                        ),
                    ],
                    query=models.RrfQuery(
                        rrf=models.Rrf(
                            k=query.hybrid.rrf_k,
                            weights=[query.hybrid.dense_weight, query.hybrid.sparse_weight],
                        )
                    ),
                    query_filter=flt,
                    limit=query.limit,
                    with_payload=True,
                )
            )
        else:
            response = await self._call(
                self._client.query_points(
                    self._collection,
                    query=dense_q if query.mode == "dense" else sparse_q,
                    using=common.DENSE if query.mode == "dense" else common.SPARSE,
                    query_filter=flt,
                    limit=query.limit,
                    with_payload=True,
                )
            )
        return [common.to_hit(p.id, p.score, p.payload) for p in response.points]

    async def _max(self, key: str) -> float | None:
        records, _ = await self._call(
            self._client.scroll(
                self._collection,
                limit=1,
                with_payload=[key],
                order_by=models.OrderBy(key=key, direction=models.Direction.DESC),
            )
        )
        return common.float_or_none((records[0].payload or {}).get(key)) if records else None

    async def _ordered(
        self, field: str, direction: Literal["asc", "desc"], filters: SearchFilters, limit: int
    ) -> list[ScoredHit]:
        records, _ = await self._call(
            self._client.scroll(
                self._collection,
                scroll_filter=server_filter(filters),
                limit=limit,
                with_payload=True,
                order_by=models.OrderBy(key=field, direction=SERVER_DIRECTIONS[direction]),
            )
        )
        hits = []
        for r in records:
            # A server sets order_value; local mode leaves it None, so read the payload.
            value = r.order_value if r.order_value is not None else (r.payload or {}).get(field)
            hits.append(common.to_hit(r.id, float(value or 0.0), r.payload))
        return hits

    async def watermark(self) -> Watermark:
        """Newest ``published_ts`` and ``indexed_ts`` (order_by on their float indexes)."""
        return Watermark(
            published_ts=await self._max("published_ts"),
            indexed_ts=await self._max("indexed_ts"),
        )

    async def needs_optimize(self) -> bool:
        """Always False: the server's optimizers run in the background on their own."""
        return False

    async def optimize(self) -> None:
        """Nothing to do: the server builds HNSW and merges segments in the background."""

    async def adopt_handover(self) -> bool:
        """Always False: ``tickerwire reindex`` swaps the collection alias itself."""
        return False

    async def _close(self) -> None:
        """Close the client (when this index opened it)."""
        if self._owns_client:
            await self._client.close()
