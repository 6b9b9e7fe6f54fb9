"""The README's run command: ``deploy/run-demo.sh`` (what ``make run`` runs after installing)
starts its own broker and worker, streams the sample feed, shows search results and stops
everything cleanly (DEMO_ONCE=1 stops after the searches)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.kafka_support import free_ports

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_streams_the_sample_feed_and_finds_it(tmp_path: Path) -> None:
    kafka, http = free_ports(2)
    env = {
        **os.environ,
        "DEMO_ONCE": "1",
        "TICKERWIRE_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "TICKERWIRE_HTTP_PORT": str(http),
        "TICKERWIRE_DATA_DIR": str(tmp_path / "state"),
        "TICKERWIRE_APP_ID": "demo-test",
        "COLUMNS": "160",
    }
    proc = subprocess.run(
        ["bash", str(REPO / "deploy" / "run-demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "produced 86, rejected 0" in out
    assert "NVIDIA" in out and "JPMorgan" in out and "crude" in out.lower()
    assert "kafka stopped" in out
