"""Re-index resumes after a crash: ``tickerwire reindex`` is killed with SIGKILL part way through
the rebuild, and the next run picks up at its checkpoint (it reads only what is left), swaps, and
the index is exact id by id. No worker runs, so the swap is the offline one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.support import assert_exact_index, expected_for, wait_until
from tests.e2e.test_pipeline_e2e import produce
from tests.reliability.faults_support import stream
from tickerwire.adapters.edge_handover import staging_root
from tickerwire.core.settings import Settings
from tickerwire.runtime.reindex import reindex

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

DOCS = 60


def checkpointed(path: Path) -> int:
    """Records the checkpoint at ``path`` says are done (0 before the first save)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(
                db.execute("SELECT COALESCE(SUM(next_offset), 0) FROM positions").fetchone()[0]
            )
    except sqlite3.Error:
        return 0  # created but not yet initialised


def test_a_killed_reindex_resumes_at_its_checkpoint(module_broker: str, tmp_path: Path) -> None:
    records, latest = stream("resume", DOCS, 10)
    produce(module_broker, records)
    settings = Settings(
        data_dir=tmp_path / "data", kafka_bootstrap=module_broker, app_id="resume", reindex_batch=4
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TICKERWIRE_DATA_DIR": str(settings.data_dir),
        "TICKERWIRE_KAFKA_BOOTSTRAP": module_broker,
        "TICKERWIRE_APP_ID": "resume",
        "TICKERWIRE_REINDEX_BATCH": "4",
    }
    checkpoint = staging_root(settings.edge_dir) / "checkpoint.sqlite"
    cli = Path(sys.executable).with_name("tickerwire")
    log = (tmp_path / "reindex-1.log").open("wb")
    proc = subprocess.Popen([str(cli), "reindex"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: checkpointed(checkpoint) >= 12, 120, "the first batches", interval=0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the pid recorded at start, nothing else
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    done_before = checkpointed(checkpoint)
    assert 0 < done_before < len(records), done_before

    again = subprocess.run(
        [str(cli), "reindex"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout.strip().splitlines()[-1])
    print(f"REINDEX resumed after kill: checkpointed={done_before} report={report}")
    assert report["resumed"] and report["swapped"]
    assert report["records"] == len(records) - done_before  # only what was left
    assert not staging_root(settings.edge_dir).exists()
    assert_exact_index(
        settings, latest_by_id := {d["doc_id"]: d for d in latest}, expected_for(settings, latest)
    )
    assert len(latest_by_id) == DOCS

    # Build another one beside it without swapping, and compare both with `tickerwire eval`.
    other = settings.model_copy(update={"chunk_tokens": 48})
    built = asyncio.run(reindex(other, swap=False))
    assert not built.swapped and built.points > 0
    staged = staging_root(settings.edge_dir)
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": d["doc_id"], "text": d["body"]}) + "\n" for d in latest)
    )
    (data / "questions.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": f"Firm{i} v2", "relevant_ids": [d["doc_id"]]})
            + "\n"
            for i, d in enumerate(latest[:5])
        )
    )
    out = tmp_path / "compare"
    args = ["eval", "--dataset", str(data), "--output", str(out)]
    targets = ["--against", str(settings.edge_dir), "--against", str(staged)]
    proc = subprocess.run(
        [str(cli), *args, *targets], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "eval.json").read_text())
    for target in (settings.edge_dir, staged):
        assert report[f"{target} · sparse"]["hit@10"] == 1.0, report
    assert report["_run"]["compared"] == [str(settings.edge_dir), str(staged)]
