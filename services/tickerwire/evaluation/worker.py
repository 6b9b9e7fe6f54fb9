"""A ``tickerwire up`` child process: started, awaited until ready, read, and stopped by its pid.

The one supervisor of a worker process: ``tickerwire eval`` runs the pipeline in one, and the
end-to-end tests (``tests/e2e/support.py``) start, stop and ``kill -9`` theirs through it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tickerwire.core.errors import TickerwireError
from tickerwire.core.waiting import wait_for

#: The ``tickerwire`` console script of the running interpreter's environment.
TICKERWIRE = str(Path(sys.executable).with_name("tickerwire"))


class WorkerStartError(TickerwireError):
    """The worker process exited, or did not answer ``/readyz``, before its start-up deadline."""


class WorkerProcess:
    """One ``tickerwire up`` process on loopback; only the pid recorded at start is ever signalled.

    Each :meth:`start` writes a fresh log, ``<log_dir>/<log_name>-<n>.log`` (``n`` counts starts).
    ``env`` adds to (and overrides) the settings derived from the arguments.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        data_dir: Path,
        app_id: str,
        http_port: int,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        log_name: str = "worker",
        command: Sequence[str] = ("up",),
        ready_path: str = "/readyz",
    ) -> None:
        self.data_dir = data_dir
        self.http_port = http_port
        self.log_dir = log_dir or data_dir
        self.log_name = log_name
        self.command = list(command)  # e.g. ("worker", "embed") with ready_path "/metrics"
        self.ready_path = ready_path
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TICKERWIRE_KAFKA_BOOTSTRAP": bootstrap,
            "TICKERWIRE_DATA_DIR": str(data_dir),
            "TICKERWIRE_APP_ID": app_id,
            "TICKERWIRE_HTTP_PORT": str(http_port),
            "TICKERWIRE_LOG_LEVEL": "warning",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30.0)

    @property
    def log_path(self) -> Path:
        """The log of the latest start."""
        return self.log_dir / f"{self.log_name}-{self.starts}.log"

    def start(self, timeout: float = 180.0) -> None:
        """Start the process and return once ``/readyz`` answers 200; WorkerStartError if not."""
        if self.proc is not None and self.proc.poll() is None:
            raise WorkerStartError(f"the worker is already running (pid {self.proc.pid})")
        self.starts += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [TICKERWIRE, *self.command], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if not wait_for(self._ready, timeout, 0.5):
            raise WorkerStartError(
                f"the worker did not become ready in {timeout:.0f}s (log: {self.log_path})"
                f"\n{self.log_tail()}"
            )

    def _ready(self) -> bool:
        if self.proc is None:
            raise WorkerStartError("the worker was not started")
        if self.proc.poll() is not None:
            raise WorkerStartError(
                f"the worker exited with {self.proc.returncode} (log: {self.log_path})"
                f"\n{self.log_tail()}"
            )
        try:
            return self.client.get(self.ready_path).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the latest log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit; after ``timeout`` s, kill. Returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            raise WorkerStartError("the worker is not running")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(timeout=30)

    def kill9(self) -> None:
        """SIGKILL, as a crash would; waits for the process to be gone."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=30)

    def close(self) -> None:
        """Kill the process if it still runs, and close the HTTP client (idempotent)."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()
        self.proc = None
        self.client.close()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for family in text_string_to_metric_families(self.client.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total
