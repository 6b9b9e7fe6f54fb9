"""Supervising the local broker: start it detached, find it by a verified pid, stop it.

The broker runs detached in its own session, so it outlives the command that started it; its pid
is recorded in a pid file, and nothing is ever signalled unless ``/proc/PID/cmdline`` shows it is
this broker (``kafka.Kafka`` with this data dir's ``server.properties``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tickerwire.core.errors import BrokerError, ConfigError
from tickerwire.core.logging import get_logger
from tickerwire.core.waiting import wait_for
from tickerwire.localbroker.config import MAIN_CLASS, BrokerConfig
from tickerwire.localbroker.files import cmdline, file_lock, pid_alive, tail
from tickerwire.localbroker.jars import ensure_jars
from tickerwire.localbroker.network import (
    LOOPBACK,
    LOOPBACK_NAMES,
    is_listening,
    is_port_free,
    parse_bootstrap,
    probe_broker,
    run_sync,
)

if TYPE_CHECKING:
    from tickerwire.core.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class BrokerStatus:
    """What ``status()`` knows: whether our broker process runs, and where."""

    running: bool
    pid: int | None
    port: int
    controller_port: int
    data_dir: Path
    log_file: Path
    #: Something accepts TCP connections on ``port`` (ours, or another process when not running).
    listening: bool

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class UpResult:
    """The outcome of ``up()``: ``started`` is False when the broker was already running."""

    status: BrokerStatus
    started: bool
    elapsed_s: float


class LocalBroker(BrokerConfig):
    """One local KRaft Kafka node on 127.0.0.1, driven by a pid file under ``data_dir``.

    Every method is safe to call from a fresh process: state lives on disk, not in this object.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        """The broker of ``tickerwire kafka up``: port from kafka_bootstrap, state in kafka_dir."""
        host, port = parse_bootstrap(settings.kafka_bootstrap)
        if host not in LOOPBACK_NAMES:
            raise ConfigError(
                f"the local broker listens on {LOOPBACK} only; "
                f"TICKERWIRE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} names another host"
            )
        return cls(
            port,
            settings.kafka_dir,
            settings.kafka_dir / "libs",
            settings.kafka_heap,
            partitions=settings.kafka_partitions,
        )

    def ensure_jars(self) -> bool:
        """Make ``libs_dir`` hold exactly the pom's jars; True if it had to download them."""
        return ensure_jars(self.libs_dir, self.pom_path)

    # Process bookkeeping ----------------------------------------------------------------------

    def _is_our_broker(self, pid: int) -> bool:
        """True when ``pid`` is alive and is ``kafka.Kafka`` running this data dir's config."""
        if not pid_alive(pid):
            return False
        args = cmdline(pid)
        return MAIN_CLASS in args and str(self.config_path) in args

    def _read_pid_file(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _scan_for_broker(self) -> int | None:
        """Find our broker when the pid file is missing (deleted by hand, or a crash mid-write)."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._is_our_broker(int(entry.name)):
                return int(entry.name)
        return None

    def _running_pid(self) -> int | None:
        """The pid of our running broker, cleaning a stale pid file on the way."""
        pid = self._read_pid_file()
        if pid is not None and self._is_our_broker(pid):
            return pid
        if self.pid_file.exists():
            log.warning("kafka.stale_pid_file", pid=pid, path=str(self.pid_file))
            self.pid_file.unlink(missing_ok=True)
        found = self._scan_for_broker()
        if found is not None:
            self.pid_file.write_text(f"{found}\n")
        return found

    def status(self) -> BrokerStatus:
        """Whether our broker runs (by its verified pid), and its ports, data dir and log file."""
        pid = self._running_pid() if self.data_dir.exists() else None
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data_dir,
            log_file=self.log_file,
            listening=is_listening(self.port),
        )

    # Start ------------------------------------------------------------------------------------

    def up(self, timeout: float = 90.0) -> UpResult:
        """Start the broker unless it already runs; return once it answers metadata requests.

        A stale pid file (dead process, or a pid now used by something else) is removed first. A
        port taken by another process, a broker that exits, or one that does not answer within
        ``timeout`` seconds raises BrokerError with the tail of its log; a broker that timed out
        is stopped again.
        """
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.data_dir / ".broker.lock"):
            pid = self._running_pid()
            if pid is not None:
                log.info("kafka.already_running", pid=pid, port=self.port)
                return UpResult(self.status(), started=False, elapsed_s=0.0)
            for port in (self.port, self.controller_port):
                # A broker that just crashed may hold its sockets for a moment longer.
                if not wait_for(lambda: is_port_free(port), 15.0, 0.25):  # noqa: B023 - called here
                    raise BrokerError(
                        f"port {LOOPBACK}:{port} is already in use by another process "
                        "(not this tickerwire broker); stop it or choose another port with "
                        "TICKERWIRE_KAFKA_BOOTSTRAP (the controller uses port + 1)"
                    )
            self.ensure_jars()
            for folder in (self.log_dirs, self.logs_dir):
                folder.mkdir(parents=True, exist_ok=True)
            self.render_config()
            self.format_storage()
            pid = self._launch()
            self.pid_file.write_text(f"{pid}\n")
            log.info("kafka.starting", pid=pid, port=self.port, data_dir=str(self.data_dir))
            try:
                self._wait_ready(pid, started + timeout)
            except BrokerError:
                if self._is_our_broker(pid):
                    self._stop_pid(pid, 10.0)
                self.pid_file.unlink(missing_ok=True)
                raise
        elapsed = time.monotonic() - started
        log.info("kafka.ready", pid=pid, port=self.port, seconds=round(elapsed, 2))
        return UpResult(self.status(), started=True, elapsed_s=elapsed)

    def _launch(self) -> int:
        """Start the JVM detached and return its pid; it is never a child of this process.

        The shell backgrounds ``exec java ...`` in a new session and exits at once, so the broker
        is reparented away from us: it outlives the command that started it, and leaves no zombie
        or unwaited ``Popen`` here.
        """
        command = self.server_command()
        with self.stdout_file.open("a") as out:
            out.write(f"\n=== start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n")
        proc = subprocess.run(
            [
                "/bin/sh",
                "-c",
                'log="$1"; shift; exec "$@" </dev/null >>"$log" 2>&1 & echo $!',
                "sh",
                str(self.stdout_file),
                *command,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,
            cwd=self.data_dir,
            check=False,
        )
        pid_text = proc.stdout.strip()
        if proc.returncode != 0 or not pid_text.isdigit():
            raise BrokerError(f"could not start the Kafka JVM: {proc.stderr.strip() or pid_text}")
        return int(pid_text)

    def _wait_ready(self, pid: int, deadline: float) -> None:
        def answers() -> bool:
            if not pid_alive(pid):
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) exited during start-up; "
                    f"log tail:\n{self._log_tail()}"
                )
            return is_listening(self.port) and bool(
                run_sync(lambda: probe_broker(self.client_options(), 3.0))
            )

        if not wait_for(answers, deadline - time.monotonic(), 0.25):
            raise BrokerError(
                f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} in time; "
                f"stopped it. Log tail:\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        parts = []
        for path in (self.stdout_file, self.log_file):
            text = tail(path, 25)
            if text:
                parts.append(f"--- {path} ---\n{text}")
        return "\n".join(parts) or "(no log output)"

    # Stop -------------------------------------------------------------------------------------

    def _stop_pid(self, pid: int, timeout: float, first: signal.Signals = signal.SIGTERM) -> None:
        """Send ``first`` (SIGTERM: a clean shutdown), wait up to ``timeout``, then SIGKILL."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, first)

        def gone() -> bool:
            return not pid_alive(pid)

        if not wait_for(gone, timeout, 0.1):
            log.warning("kafka.kill", pid=pid, reason=f"no clean shutdown within {timeout}s")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not wait_for(gone, 10.0, 0.1):
                raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")

    def kill(self) -> bool:
        """SIGKILL our broker (found by its verified pid), as a crash; False when none ran."""
        return self.down(0.0, first=signal.SIGKILL)

    def down(self, timeout: float = 30.0, first: signal.Signals = signal.SIGTERM) -> bool:
        """Stop our broker (``first``, SIGKILL after ``timeout``); False when none was running."""
        if not self.data_dir.exists():
            return False
        with file_lock(self.data_dir / ".broker.lock"):
            pid = self._running_pid()
            if pid is None:
                return False
            started = time.monotonic()
            self._stop_pid(pid, timeout, first)
            self.pid_file.unlink(missing_ok=True)
        log.info(
            "kafka.stopped",
            pid=pid,
            signal=first.name,
            seconds=round(time.monotonic() - started, 2),
        )
        return True
