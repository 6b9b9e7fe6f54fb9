"""The Edge handover of ``tickerwire reindex`` (adapters/edge_handover.py), against real Edge
shards: the worker that owns the live shard journals on ``prepare``, swaps on ``ready`` with its
token, replays what it wrote meanwhile, and refuses what it cannot do safely."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tickerwire.adapters import edge_handover as ho
from tickerwire.adapters.edge_layout import current_shard
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.core.errors import ConfigError

from ._corpus import CORPUS, DIM


async def _staged(root: Path, count: int, dim: int = DIM) -> set[str]:
    """A rebuilt index in ``root``'s staging directory holding the first ``count`` points."""
    points = CORPUS[:count]
    if dim != DIM:
        points = [dataclasses.replace(p, dense=[0.1] * dim) for p in points]
    async with EdgeIndex(ho.staging_root(root)) as staged:
        await staged.ensure_collection(dim)
        await staged.upsert(points)
    return {p.id for p in points}


async def test_prepare_then_ready_swaps_with_the_writes_made_meanwhile(tmp_path: Path) -> None:
    root = tmp_path / "edge"
    async with EdgeIndex(root) as live:
        await live.ensure_collection(DIM)
        await live.upsert(CORPUS[:2])
        old = current_shard(root)
        staged = await _staged(root, 4)

        ho.Handover("prepare", DIM).write(root)
        assert await live.adopt_handover() is False
        token = (ho.read_ack(root) or {})["token"]
        assert await live.needs_optimize() is False  # the optimize lock is held meanwhile
        await live.upsert(CORPUS[6:7])  # a live write while the rebuild catches up: journaled
        ho.Handover("ready", DIM, token).write(root)
        assert await live.adopt_handover() is True

        assert await live.all_point_ids() == staged | {CORPUS[6].id}
        assert current_shard(root) != old and old is not None and not old.exists()
        assert not ho.staging_root(root).exists()
        await live.upsert(CORPUS[7:8])  # the new shard takes writes
        assert CORPUS[7].id in await live.all_point_ids()
        assert await live.adopt_handover() is False  # nothing asked any more


async def test_ready_from_a_handover_this_worker_did_not_journal_is_refused(
    tmp_path: Path,
) -> None:
    root = tmp_path / "edge"
    async with EdgeIndex(root) as live:
        await live.ensure_collection(DIM)
        await live.upsert(CORPUS[:2])
        await _staged(root, 4)
        ho.Handover("ready", DIM, "someone-elses-token").write(root)
        assert await live.adopt_handover() is False
        assert "did not journal" in (ho.read_ack(root) or {})["refused"]
        assert await live.all_point_ids() == {p.id for p in CORPUS[:2]}


async def test_a_rebuild_with_another_dimension_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "edge"
    async with EdgeIndex(root) as live:
        await live.ensure_collection(DIM)
        await _staged(root, 2, dim=DIM * 2)
        ho.Handover("prepare", DIM * 2).write(root)
        assert await live.adopt_handover() is False
        assert "dimensions" in (ho.read_ack(root) or {})["refused"]


async def test_a_withdrawn_request_ends_the_journal_and_frees_optimization(
    tmp_path: Path,
) -> None:
    root = tmp_path / "edge"
    async with EdgeIndex(root, optimize_min_unindexed=1) as live:
        await live.ensure_collection(DIM)
        await live.upsert(CORPUS)
        await _staged(root, 2)
        ho.Handover("prepare", DIM).write(root)
        await live.adopt_handover()
        assert await live.needs_optimize() is False
        ho.clear_request(root)  # reindex went away (stopped, or will start over)
        assert await live.adopt_handover() is False
        assert await live.needs_optimize() is True
        assert await live.all_point_ids() == {p.id for p in CORPUS}


async def test_offline_swap_needs_the_live_lock(tmp_path: Path) -> None:
    root = tmp_path / "edge"
    staged = await _staged(root, 3)
    async with EdgeIndex(root) as live:
        await live.ensure_collection(DIM)
        assert ho.live_owner_free(root) is None  # a worker owns it: the swap goes through it
    lock = ho.live_owner_free(root)
    assert lock is not None
    try:
        ho.adopt_offline(root)
    finally:
        lock.release()
    async with EdgeIndex(root) as reopened:
        await reopened.ensure_collection(DIM)
        assert await reopened.all_point_ids() == staged
    with pytest.raises(ConfigError, match="no rebuilt shard"):
        ho.adopt_offline(root)
