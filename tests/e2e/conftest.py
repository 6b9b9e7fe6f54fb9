"""Shared e2e fixtures: one ``tickerwire up`` worker holding the whole sample feed."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import TICKERWIRE, Worker, wait_until
from tests.kafka_support import free_port

REPO = Path(__file__).resolve().parents[2]
#: A document of the sample feed, and a question only understanding can answer right.
SAMPLE_NVDA_10Q = "filing:NVDA:10-Q:2026-10-25"
SAMPLE_TESLA_2019 = "What was Tesla's revenue in 2019?"


@pytest.fixture(scope="module")
def sample_feed_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A worker that has indexed deploy/sample and learned its companies (entities topic).

    One per module that only reads the sample feed. Never longer-lived: every worker on the
    session broker consumes the shared stage topics, and a worker with other chunk settings left
    running would apply its own commit records to the next module's index (seen as the pipeline
    e2e's updated documents losing their new chunks).
    """
    w = Worker(
        bootstrap=kafka_bootstrap,
        data_dir=tmp_path_factory.mktemp("sample-worker"),
        app_id=f"sample-{uuid.uuid4().hex[:8]}",
        http_port=free_port(),
    )
    w.start()
    try:
        subprocess.run(
            [TICKERWIRE, "produce", str(REPO / "deploy" / "sample")],
            env={**os.environ, "TICKERWIRE_KAFKA_BOOTSTRAP": kafka_bootstrap},
            check=True,
            capture_output=True,
            timeout=300,
        )
        wait_until(
            lambda: (
                w.document_ids(SAMPLE_NVDA_10Q) is not None
                and w.search(SAMPLE_TESLA_2019, understand=False)["hits"] != []
            ),
            300,
            "the sample feed to be indexed",
        )
        wait_until(
            lambda: w.search(SAMPLE_TESLA_2019)["understood"] is not None,
            60,
            "the registry to learn Tesla from the entities topic",
        )
        yield w
    finally:
        w.close()
