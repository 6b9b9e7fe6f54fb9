"""Fault suite: the all-in-one process (``tickerwire up``) is killed with SIGKILL while the Edge
index is being optimized (the copy-and-swap of docs/index-maintenance.md), and restarts into a
correct index: every document with exactly its chunk ids, no stray shard generation left, and
no optimize child outliving the worker that started it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.reliability.faults_support import EXACT, local_case

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 80
UPDATES = 20
#: Maintenance that optimizes early and often, so the kill lands inside an optimize.
MAINTENANCE = {
    "TICKERWIRE_INDEX_OPTIMIZE_MIN_UNINDEXED": "40",
    "TICKERWIRE_INDEX_MAINTENANCE_INTERVAL_S": "0.5",
    "TICKERWIRE_INDEX_MAINTENANCE_QUIET_S": "0",
    "TICKERWIRE_LOG_LEVEL": "info",  # the test waits for the optimize_starting line
}


def optimizing(log: Path) -> bool:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "index_optimize_starting" in text


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def test_a_kill_during_optimize_restarts_into_a_correct_index(
    module_broker: str, tmp_path: Path
) -> None:
    case = local_case("optkill", module_broker, tmp_path, DOCS, UPDATES)
    worker = case.worker
    worker.env.update(MAINTENANCE)
    half = len(case.records) // 2
    try:
        case.start(case.records[:half])
        wait_until(lambda: optimizing(worker.log_path), 120, "an optimize to start")
        proc = worker.proc
        assert proc is not None
        wait_until(lambda: bool(children(proc.pid)), 30, "the optimize child", interval=0.05)
        orphans = children(proc.pid)
        worker.kill9()  # mid-optimize: the copy is being optimized in the child
        wait_until(
            lambda: not any(Path(f"/proc/{c}").exists() for c in orphans),
            30,
            "the optimize child to die with the worker",
        )
        worker.start()
        produce(module_broker, case.records[half:])
        case.settle()
        edge = tmp_path / "data" / "qdrant-edge"
        shards = sorted(p.name for p in edge.glob("shard-*"))
        assert len(shards) <= 2, shards  # the live one, and at most a build in progress
        counts = case.audit("sigkill_during_optimize", "worker_sigkill_once_mid_optimize")
        assert counts == EXACT
        assert worker.stop() == 0
    finally:
        worker.close()
