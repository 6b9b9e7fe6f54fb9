"""One contract for every VectorIndex: Qdrant Edge and qdrant-client local mode behave alike."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import REGISTRY

from tickerwire.adapters import index_factory
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.adapters.index_factory import open_index
from tickerwire.adapters.index_server import ServerIndex
from tickerwire.core.errors import ConfigError, ValidationError, VectorIndexError
from tickerwire.core.ports import (
    HybridParams,
    IndexQuery,
    Point,
    SearchFilters,
    SearchMode,
    SparseVector,
    VectorIndex,
    Watermark,
)
from tickerwire.core.settings import Settings

from ._corpus import (
    BY_INDEX,
    CORPUS,
    DIM,
    SHARED_TERM,
    ConcreteIndex,
    basis,
    delete_except,
    open_backend,
    point_id,
    term,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

AnyIndex = TypeVar("AnyIndex", EdgeIndex, ServerIndex)
NO_FILTER = SearchFilters()
EQUAL = HybridParams()


def ids_of(*indices: int) -> set[str]:
    return {BY_INDEX[i] for i in indices}


def doc_points(doc_id: str) -> list[Point]:
    return [p for p in CORPUS if p.payload["doc_id"] == doc_id]


async def search(
    index: ConcreteIndex,
    mode: SearchMode,
    *,
    dense: int | None = None,
    sparse: int | None = None,
    filters: SearchFilters = NO_FILTER,
    limit: int = 10,
    hybrid: HybridParams = EQUAL,
) -> list[str]:
    """Ids of the hits for ``basis(dense)`` and the term of point ``sparse`` (else shared)."""
    hits = await index.search(
        IndexQuery(
            mode,
            dense=None if dense is None else basis(dense),
            sparse=SparseVector((SHARED_TERM if sparse is None else term(sparse),), (1.0,)),
            filters=filters,
            limit=limit,
            hybrid=hybrid,
        )
    )
    return [h.id for h in hits]


# --- collection lifecycle ---------------------------------------------------------------------


async def test_ensure_collection_twice_keeps_points(loaded: ConcreteIndex) -> None:
    await loaded.ensure_collection(DIM)
    assert await loaded.count() == len(CORPUS)


async def test_backend_label_names_the_implementation(index: ConcreteIndex) -> None:
    assert index.backend == ("edge" if isinstance(index, EdgeIndex) else "server")


async def test_both_back_ends_implement_the_vector_index_port(index: ConcreteIndex) -> None:
    port: VectorIndex = index  # mypy checks the signatures, isinstance the names
    assert isinstance(port, VectorIndex)


async def test_edge_reopen_keeps_points(tmp_path: Path) -> None:
    first = await open_backend("edge", tmp_path)
    await first.upsert(CORPUS)
    await first.aclose()
    await first.aclose()  # idempotent
    async with EdgeIndex(tmp_path / "edge") as again:
        await again.ensure_collection(DIM)
        assert await again.all_point_ids() == {p.id for p in CORPUS}
        assert (await again.get_document("d1"))[0].payload["title"] == "title d1"


async def test_edge_second_owner_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    async with EdgeIndex(tmp_path / "edge") as owner:
        await owner.ensure_collection(DIM)
        intruder = EdgeIndex(tmp_path / "edge")
        with pytest.raises(ConfigError, match="in use by another process"):
            await intruder.ensure_collection(DIM)
        await intruder.aclose()


async def test_edge_reopen_with_another_dim_is_refused(tmp_path: Path) -> None:
    await (await open_backend("edge", tmp_path)).aclose()
    other = EdgeIndex(tmp_path / "edge")
    with pytest.raises(ConfigError):
        await other.ensure_collection(DIM * 2)
    await other.aclose()


async def test_server_existing_collection_with_another_dim_is_refused(tmp_path: Path) -> None:
    async with ServerIndex("c", path=str(tmp_path / "local")) as first:
        await first.ensure_collection(DIM)
    async with ServerIndex("c", path=str(tmp_path / "local")) as second:
        with pytest.raises(ConfigError, match="dense size"):
            await second.ensure_collection(DIM + 1)


async def test_factory_picks_edge_without_url_and_server_with_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edge = open_index(Settings(data_dir=tmp_path), DIM)
    assert isinstance(edge, EdgeIndex)
    assert edge.path == tmp_path / "qdrant-edge"
    await edge.aclose()
    calls: list[tuple[str, dict[str, object]]] = []
    sentinel = object()

    def fake_server(name: str, **kwargs: object) -> object:
        calls.append((name, kwargs))
        return sentinel

    monkeypatch.setattr(index_factory, "ServerIndex", fake_server)
    settings = Settings(data_dir=tmp_path, qdrant_url="http://q:6333", qdrant_api_key="k")
    assert open_index(settings, DIM) is sentinel
    assert calls == [("tickerwire", {"url": "http://q:6333", "api_key": "k"})]


# --- writes -----------------------------------------------------------------------------------


async def test_upserting_the_same_ids_twice_keeps_the_count(loaded: ConcreteIndex) -> None:
    await loaded.upsert(CORPUS)
    assert await loaded.count() == len(CORPUS)
    assert await loaded.all_point_ids() == {p.id for p in CORPUS}


async def test_upsert_replaces_the_payload_of_an_existing_id(loaded: ConcreteIndex) -> None:
    first = CORPUS[0]
    changed = dataclasses.replace(first, payload={**first.payload, "title": "new title"})
    await loaded.upsert([changed])
    assert (await loaded.get_document("d1"))[0].payload["title"] == "new title"
    assert await loaded.count() == len(CORPUS)


async def test_refresh_payloads_merges_fields_in_place_and_skips_missing_points(
    loaded: ConcreteIndex,
) -> None:
    d1 = [point_id("d1", i) for i in range(3)]
    await loaded.refresh_payloads(
        [
            (d1[2], {"chunk_index": 0, "title": "retitled", "price": 7}),
            (d1[0], {"chunk_index": 2, "title": "retitled"}),
            (point_id("nope", 0), {"title": "never stored"}),
        ]
    )
    hits = await loaded.get_document("d1")  # ordered by chunk_index
    assert [h.id for h in hits] == [d1[2], d1[1], d1[0]]
    assert [h.payload["title"] for h in hits] == ["retitled", hits[1].payload["title"], "retitled"]
    assert hits[1].payload["title"] != "retitled"
    assert hits[0].payload["price"] == 7.0  # a float field is stored as a float
    assert hits[0].payload["text"] == next(p for p in CORPUS if p.id == d1[2]).payload["text"]
    assert await loaded.count() == len(CORPUS)
    assert await loaded.refresh_payloads([]) is None


async def test_delete_except_removes_exactly_the_unlisted_points_of_that_doc(
    loaded: ConcreteIndex,
) -> None:
    keep = [point_id("d1", 0), point_id("d1", 2)]
    assert await delete_except(loaded, "d1", keep) == 1
    assert await loaded.document_point_ids("d1") == set(keep)
    assert await loaded.all_point_ids() == {p.id for p in CORPUS} - {point_id("d1", 1)}
    assert await delete_except(loaded, "d1", keep) == 0  # replay changes nothing


async def test_delete_except_with_empty_keep_deletes_the_document(loaded: ConcreteIndex) -> None:
    assert await delete_except(loaded, "d2", []) == 2
    assert await loaded.get_document("d2") == []
    assert await loaded.count() == len(CORPUS) - 2
    assert await delete_except(loaded, "unknown", []) == 0


async def test_delete_except_ignores_kept_ids_of_other_documents(loaded: ConcreteIndex) -> None:
    assert await delete_except(loaded, "d4", [point_id("d1", 0)]) == 2
    assert await loaded.document_point_ids("d1") == {p.id for p in doc_points("d1")}


def ids_except(*gone: str) -> set[str]:
    return {p.id for p in CORPUS} - set(gone)


async def test_apply_commits_applies_several_documents_in_one_call(loaded: ConcreteIndex) -> None:
    commits = [
        ("d1", [point_id("d1", 0), point_id("d1", 2)]),  # drops d1#1
        ("d2", []),  # empty keep: the whole document goes
        ("nope", []),  # a document without points: nothing happens
        ("d4", [point_id("d4", 1), point_id("d1", 1)]),  # drops d4#0; d1#1 is not d4's
        ("d3", [point_id("d3", 0)]),  # keeps everything
    ]
    assert await loaded.apply_commits(commits) == 4
    assert await loaded.all_point_ids() == ids_except(
        point_id("d1", 1), point_id("d2", 0), point_id("d2", 1), point_id("d4", 0)
    )
    assert await loaded.apply_commits(commits) == 0  # replay changes nothing
    assert await loaded.count() == len(CORPUS) - 4


async def test_apply_commits_applies_the_same_document_twice_in_order(
    loaded: ConcreteIndex,
) -> None:
    commits = [
        ("d1", [point_id("d1", 0), point_id("d1", 1)]),  # drops d1#2
        ("d4", []),
        ("d1", [point_id("d1", 1), point_id("d1", 2)]),  # then drops d1#0; d1#2 is gone
        ("d3", [point_id("d3", 0)]),
        ("d3", []),  # a later empty keep deletes what an earlier commit kept
    ]
    assert await loaded.apply_commits(commits) == 2 + 2 + 1
    assert await loaded.document_point_ids("d1") == {point_id("d1", 1)}
    assert await loaded.all_point_ids() == ids_except(
        point_id("d1", 0),
        point_id("d1", 2),
        point_id("d3", 0),
        point_id("d4", 0),
        point_id("d4", 1),
    )


async def test_apply_commits_with_nothing_to_delete(loaded: ConcreteIndex) -> None:
    assert await loaded.apply_commits([]) == 0
    assert await loaded.apply_commits([("nope", []), ("d2", [p.id for p in doc_points("d2")])]) == 0
    assert await loaded.all_point_ids() == ids_except()
    assert await loaded.count() == len(CORPUS)


async def test_apply_commits_on_an_empty_index_deletes_nothing(index: ConcreteIndex) -> None:
    assert await index.apply_commits([("d1", []), ("d1", [point_id("d1", 0)])]) == 0
    assert await index.count() == 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_apply_commits_counts_one_write_and_every_deleted_point(
    loaded: ConcreteIndex,
) -> None:
    backend = loaded.backend
    writes = sample("tickerwire_index_writes_total", backend=backend, op="delete")
    timed = sample("tickerwire_index_write_seconds_count", backend=backend, op="delete")
    deleted = sample("tickerwire_index_points_deleted_total", backend=backend)
    commits = [("d1", []), ("d2", [point_id("d2", 0)]), ("nope", []), ("d1", [])]
    assert await loaded.apply_commits(commits) == 4
    assert sample("tickerwire_index_writes_total", backend=backend, op="delete") == writes + 1
    assert sample("tickerwire_index_write_seconds_count", backend=backend, op="delete") == (
        timed + 1
    )
    assert sample("tickerwire_index_points_deleted_total", backend=backend) == deleted + 4
    if isinstance(loaded, EdgeIndex):  # the server's gauge is set by count() only
        assert sample("tickerwire_index_points", backend=backend) == len(CORPUS) - 4


async def open_loaded(index: AnyIndex) -> AnyIndex:
    await index.ensure_collection(DIM)
    await index.upsert(CORPUS)
    return index


async def test_edge_apply_commits_is_one_executor_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_loaded(EdgeIndex(tmp_path / "edge")) as index:
        jobs: list[str] = []
        run = index._run

        async def spy(fn: Any, *args: Any) -> Any:
            jobs.append(getattr(fn, "__name__", repr(fn)))
            return await run(fn, *args)

        monkeypatch.setattr(index, "_run", spy)
        commits = [(f"doc-{n}", [point_id(f"doc-{n}", 0)]) for n in range(200)] + [("d1", [])]
        assert await index.apply_commits(commits) == 3
        assert jobs == ["_commits_sync"]


async def test_server_apply_commits_is_one_count_and_one_batch_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_loaded(ServerIndex("contract", location=":memory:")) as index:
        client = index._client
        calls: list[str] = []
        for name in ("count", "delete", "batch_update_points", "scroll"):
            original = getattr(client, name)

            def spy(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
                calls.append(_name)
                return _original(*args, **kw)

            monkeypatch.setattr(client, name, spy)
        keep_all = [(f"doc-{n}", [point_id(f"doc-{n}", 0)]) for n in range(200)]
        assert await index.apply_commits(keep_all) == 0
        assert calls == ["count"]  # nothing to delete: no write request at all
        calls.clear()
        assert await index.apply_commits([*keep_all, ("d1", []), ("d2", [])]) == 5
        assert calls == ["count", "batch_update_points"]


async def test_edge_apply_commits_with_a_bad_kept_id_applies_nothing(tmp_path: Path) -> None:
    # Edge checks every id before it applies anything; qdrant-client's local mode takes any id.
    async with await open_loaded(EdgeIndex(tmp_path / "edge")) as index:
        with pytest.raises(VectorIndexError, match="not a UUID"):
            await index.apply_commits([("d1", []), ("d2", ["not-a-uuid"])])
        assert await index.count() == len(CORPUS)


async def test_upsert_without_doc_id_is_rejected(index: ConcreteIndex) -> None:
    bad = dataclasses.replace(CORPUS[0], payload={"text": "no doc"})
    with pytest.raises(ValidationError):
        await index.upsert([bad])


async def test_edge_upsert_with_a_bad_id_writes_nothing(tmp_path: Path) -> None:
    async with await open_loaded(EdgeIndex(tmp_path / "edge")) as index:
        bad = dataclasses.replace(CORPUS[0], id="not-a-uuid")
        fresh = dataclasses.replace(CORPUS[0], id=point_id("d9", 0))
        with pytest.raises(VectorIndexError, match="not-a-uuid"):
            await index.upsert([fresh, bad])
        assert await index.count() == len(CORPUS)


async def test_edge_upsert_takes_tuple_and_int_dense_vectors(tmp_path: Path) -> None:
    async with EdgeIndex(tmp_path / "edge") as index:
        await index.ensure_collection(DIM)
        as_tuple = dataclasses.replace(CORPUS[0], dense=tuple(CORPUS[0].dense))
        as_ints = dataclasses.replace(CORPUS[1], dense=[1] + [0] * (DIM - 1))
        await index.upsert([as_tuple, as_ints])
        hits = await index.search(IndexQuery("dense", dense=basis(0), limit=2))
        assert [h.id for h in hits] == [as_tuple.id, as_ints.id]
        assert hits[0].score == pytest.approx(1.0)


# --- reads ------------------------------------------------------------------------------------


async def test_count_is_exact_with_and_without_filters(loaded: ConcreteIndex) -> None:
    assert await loaded.count() == 8
    assert await loaded.count(None) == 8
    assert await loaded.count(SearchFilters(tickers=("MSFT",))) == 3
    assert await loaded.count(SearchFilters(doc_types=("news",), sources=("reuters",))) == 2


async def test_get_document_is_ordered_by_chunk_index(index: ConcreteIndex) -> None:
    await index.upsert(list(reversed(doc_points("d1"))))
    hits = await index.get_document("d1")
    assert [h.payload["chunk_index"] for h in hits] == [0, 1, 2]
    assert [h.id for h in hits] == [point_id("d1", i) for i in range(3)]
    assert all(h.score == 0 for h in hits)


async def test_document_point_ids_lists_only_that_document(loaded: ConcreteIndex) -> None:
    assert await loaded.document_point_ids("d2") == {p.id for p in doc_points("d2")}
    assert await loaded.document_point_ids("nope") == set()


async def test_watermark_is_the_newest_published_and_indexed(loaded: ConcreteIndex) -> None:
    newest_published = max(p.payload["published_ts"] for p in CORPUS)
    newest_indexed = max(p.payload["indexed_ts"] for p in CORPUS)
    assert await loaded.watermark() == Watermark(newest_published, newest_indexed)


async def test_watermark_of_an_empty_index_is_unknown(index: ConcreteIndex) -> None:
    assert await index.watermark() == Watermark(None, None)


# --- search modes -----------------------------------------------------------------------------


async def test_dense_search_ranks_the_nearest_point_first(loaded: ConcreteIndex) -> None:
    for i in range(len(CORPUS)):
        hits = await search(loaded, "dense", dense=i, limit=3)
        assert hits[0] == BY_INDEX[i]


async def test_sparse_search_ranks_the_point_with_the_rare_term_first(
    loaded: ConcreteIndex,
) -> None:
    hits = await search(loaded, "sparse", sparse=5)
    assert hits == [BY_INDEX[5]]  # only point 5 carries term(5)


async def test_sparse_search_on_a_shared_term_ranks_by_weight(loaded: ConcreteIndex) -> None:
    hits = await loaded.search(
        IndexQuery("sparse", sparse=SparseVector((SHARED_TERM,), (1.0,)), limit=20)
    )
    assert [h.id for h in hits] == [BY_INDEX[i] for i in reversed(range(8))]


async def test_hybrid_search_ranks_the_point_both_sides_agree_on_first(
    loaded: ConcreteIndex,
) -> None:
    hits = await search(loaded, "hybrid", dense=2, sparse=2, limit=5)
    assert hits[0] == BY_INDEX[2]


async def test_minmax_hybrid_share_decides_between_disagreeing_rankings(
    loaded: ConcreteIndex,
) -> None:
    # One-deep searches: dense finds only point 1, sparse only point 6; the dense share picks.
    dense_heavy = HybridParams(fusion="minmax", dense_share=0.8, prefetch=1)
    sparse_heavy = HybridParams(fusion="minmax", dense_share=0.2, prefetch=1)
    top = await search(loaded, "hybrid", dense=1, sparse=6, hybrid=dense_heavy, limit=1)
    assert top == [BY_INDEX[1]]
    top = await search(loaded, "hybrid", dense=1, sparse=6, hybrid=sparse_heavy, limit=1)
    assert top == [BY_INDEX[6]]


async def test_hybrid_weights_decide_between_disagreeing_rankings(loaded: ConcreteIndex) -> None:
    # One-deep prefetches: dense finds only point 1, sparse only point 6; weights pick one.
    dense_heavy = HybridParams(dense_weight=3.0, sparse_weight=1.0, prefetch=1)
    sparse_heavy = HybridParams(dense_weight=1.0, sparse_weight=3.0, prefetch=1)
    top = await search(loaded, "hybrid", dense=1, sparse=6, hybrid=dense_heavy, limit=1)
    assert top == [BY_INDEX[1]]
    top = await search(loaded, "hybrid", dense=1, sparse=6, hybrid=sparse_heavy, limit=1)
    assert top == [BY_INDEX[6]]


async def test_hits_carry_the_payload(loaded: ConcreteIndex) -> None:
    hits = await loaded.search(IndexQuery("dense", dense=basis(5), limit=1))
    assert hits[0].payload["doc_id"] == "d3"
    assert hits[0].payload["tickers"] == ["AAPL", "MSFT"]
    assert hits[0].payload["published_at"] == "2024-03-01T00:00:00Z"
    assert hits[0].score > 0.9


@pytest.mark.parametrize(
    ("mode", "dense", "sparse"),
    [("dense", False, True), ("sparse", True, False), ("hybrid", True, False)],
)
async def test_missing_query_vectors_are_rejected(
    index: ConcreteIndex, mode: SearchMode, dense: bool, sparse: bool
) -> None:
    with pytest.raises(ValidationError):
        await index.search(
            IndexQuery(
                mode,
                dense=basis(0) if dense else None,
                sparse=SparseVector((1,), (1.0,)) if sparse else None,
                limit=3,
            )
        )


# --- filters ----------------------------------------------------------------------------------

FEB = datetime(2024, 2, 1, tzinfo=UTC)
MAR = datetime(2024, 3, 1, tzinfo=UTC)

FILTER_CASES: list[tuple[str, SearchFilters, set[int]]] = [
    ("tickers any-of", SearchFilters(tickers=("MSFT",)), {3, 4, 5}),
    ("tickers several", SearchFilters(tickers=("TSLA", "MSFT")), {3, 4, 5, 6, 7}),
    ("doc_types", SearchFilters(doc_types=("news",)), {3, 4, 5}),
    ("sources", SearchFilters(sources=("sec", "seekingalpha")), {0, 1, 2, 6, 7}),
    ("doc_ids", SearchFilters(doc_ids=("d4",)), {6, 7}),
    ("published_after inclusive", SearchFilters(published_after=MAR), {5, 6, 7}),
    ("published_before exclusive", SearchFilters(published_before=MAR), {0, 1, 2, 3, 4}),
    ("date window", SearchFilters(published_after=FEB, published_before=MAR), {3, 4}),
    ("as_of inclusive", SearchFilters(as_of=FEB), {0, 1, 2, 3, 4}),
    ("naive as_of is UTC", SearchFilters(as_of=datetime(2024, 1, 1)), {0, 1, 2}),
    ("combined", SearchFilters(tickers=("AAPL",), as_of=MAR, doc_types=("news",)), {5}),
    ("nothing matches", SearchFilters(tickers=("NVDA",)), set()),
]


@pytest.mark.parametrize(
    ("name", "filters", "expected"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES]
)
async def test_filters_restrict_every_mode(
    loaded: ConcreteIndex, name: str, filters: SearchFilters, expected: set[int]
) -> None:
    for mode in ("dense", "sparse", "hybrid"):
        hits = await loaded.search(
            IndexQuery(
                mode,
                dense=basis(0),
                sparse=SparseVector((SHARED_TERM,), (1.0,)),
                filters=filters,
                limit=20,
            )
        )
        assert {h.id for h in hits} == ids_of(*expected), (name, mode)
    assert await loaded.count(filters) == len(expected)


# --- maintenance ------------------------------------------------------------------------------


async def test_small_index_needs_no_optimize(loaded: ConcreteIndex) -> None:
    assert await loaded.needs_optimize() is False


async def test_optimize_keeps_every_write_made_while_it_runs(loaded: ConcreteIndex) -> None:
    extra = [
        dataclasses.replace(
            p,
            id=point_id("d9", n),
            payload={**p.payload, "doc_id": "d9", "chunk_index": n},
        )
        for n, p in enumerate(CORPUS)
    ]

    async def writer() -> None:
        for point in extra:
            await loaded.upsert([point])
            await asyncio.sleep(0.02)
        await delete_except(loaded, "d2", [point_id("d2", 0)])
        kept = [point_id("d9", 1)]
        await loaded.apply_commits([("d3", []), ("d9", [point_id("d9", 0), *kept]), ("d9", kept)])

    await asyncio.gather(loaded.optimize(), writer())
    gone = {point_id("d2", 1), point_id("d3", 0), *(p.id for p in extra)} - {point_id("d9", 1)}
    expected = ({p.id for p in CORPUS} | {p.id for p in extra}) - gone
    assert await loaded.all_point_ids() == expected
    assert (await search(loaded, "dense", dense=3, filters=SearchFilters(doc_ids=("d2",))))[
        0
    ] == point_id("d2", 0)
    await loaded.optimize()  # a second generation swaps in as well
    assert await loaded.count() == len(expected)


async def test_edge_optimize_survives_reopen(tmp_path: Path) -> None:
    first = await open_backend("edge", tmp_path)
    await first.upsert(CORPUS)
    await first.optimize()
    await first.aclose()
    async with EdgeIndex(tmp_path / "edge") as again:
        await again.ensure_collection(DIM)
        assert await again.all_point_ids() == {p.id for p in CORPUS}
        shards = sorted(p.name for p in (tmp_path / "edge").glob("shard-*"))
        assert shards == ["shard-000002"]


# --- congruence -------------------------------------------------------------------------------

CONGRUENCE_QUERIES: list[tuple[SearchMode, int | None, int | None, SearchFilters, HybridParams]] = [
    ("dense", 0, None, NO_FILTER, EQUAL),
    ("dense", 6, None, SearchFilters(tickers=("AAPL", "TSLA")), EQUAL),
    ("sparse", None, 3, NO_FILTER, EQUAL),
    ("sparse", None, 2, SearchFilters(as_of=MAR), EQUAL),
    ("sparse", None, None, SearchFilters(tickers=("AAPL",)), EQUAL),
    ("hybrid", 4, 4, NO_FILTER, EQUAL),
    ("hybrid", 1, None, NO_FILTER, HybridParams(rrf_k=2, dense_weight=1.0, sparse_weight=0.77)),
    (
        "hybrid",
        2,
        None,
        SearchFilters(doc_types=("news", "filing")),
        HybridParams(prefetch=3, sparse_weight=0.77),
    ),
    ("hybrid", 7, None, SearchFilters(as_of=MAR), HybridParams(dense_weight=0.6)),
    ("hybrid", 4, 4, NO_FILTER, HybridParams(fusion="minmax", dense_share=0.4)),
    ("hybrid", 2, None, SearchFilters(as_of=MAR), HybridParams(fusion="minmax", prefetch=3)),
]


async def test_both_backends_return_the_same_ids_for_the_same_queries(tmp_path: Path) -> None:
    edge = await open_backend("edge", tmp_path)
    server = await open_backend("server", tmp_path)
    try:
        for idx in (edge, server):
            await idx.upsert(CORPUS)
        for mode, dense, sparse, filters, hybrid in CONGRUENCE_QUERIES:
            got = [
                await search(
                    idx, mode, dense=dense, sparse=sparse, filters=filters, hybrid=hybrid, limit=5
                )
                for idx in (edge, server)
            ]
            assert got[0] == got[1], (mode, dense, sparse, filters)
            assert got[0], (mode, dense, sparse, filters)
        for doc in ("d1", "d3"):
            assert [h.id for h in await edge.get_document(doc)] == [
                h.id for h in await server.get_document(doc)
            ]
        assert await edge.watermark() == await server.watermark()
    finally:
        await edge.aclose()
        await server.aclose()
