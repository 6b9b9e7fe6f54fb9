"""Running the real ``tickerwire up`` process in end-to-end tests, and talking to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tickerwire.core.records import RawDocument
from tickerwire.stages.preprocess import ChunkerConfig, prepare

TICKERWIRE = str(Path(sys.executable).with_name("tickerwire"))


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Worker:
    """One ``tickerwire up`` process; stopped by the pid recorded at start."""

    def __init__(
        self,
        *,
        bootstrap: str,
        data_dir: Path,
        app_id: str,
        http_port: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.http_port = http_port
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TICKERWIRE_KAFKA_BOOTSTRAP": bootstrap,
            "TICKERWIRE_DATA_DIR": str(data_dir),
            "TICKERWIRE_APP_ID": app_id,
            "TICKERWIRE_HTTP_PORT": str(http_port),
            "TICKERWIRE_LOG_LEVEL": "warning",
            # The tests poll the API far faster than the default per-client limit (600/minute).
            "TICKERWIRE_API_RATE_LIMIT": "1000000/minute",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30.0)

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"worker-{self.starts}.log"

    def start(self, timeout: float = 120.0) -> None:
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [TICKERWIRE, "up"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._ready, timeout, f"the worker to be ready (log: {self.log_path})")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the clean exit; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.client.close()

    # --- reading the worker's state -------------------------------------------------------

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        text = self.client.get("/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def document_ids(self, doc_id: str) -> set[str] | None:
        resp = self.client.get(f"/v1/documents/{doc_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return {c["chunk_id"] for c in resp.json()["chunks"]}

    def search(self, query: str, **body: Any) -> dict[str, Any]:
        resp = self.client.post("/v1/search", json={"query": query, **body})
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


def expected_chunk_ids(
    docs: Iterable[dict[str, Any]], chunker: ChunkerConfig
) -> dict[str, set[str]]:
    """The chunk ids the pipeline must index for each upserted document (same code path)."""
    out: dict[str, set[str]] = {}
    for d in docs:
        prepared = prepare(RawDocument.model_validate(d), chunker)
        out[d["doc_id"]] = {c.chunk_id for c in prepared.chunks}
    return out
