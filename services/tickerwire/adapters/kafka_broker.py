"""The local Apache Kafka broker: one KRaft node (broker and controller) on 127.0.0.1.

Jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached under the Kafka data
dir. The broker runs detached in its own session, so it outlives the command that started it;
its pid is recorded in a pid file, and nothing is ever signalled unless ``/proc/PID/cmdline``
shows it is this broker (``kafka.Kafka`` with this data dir's ``server.properties``).

Layout below ``data_dir`` (``settings.kafka_dir``)::

    libs/              the jars (plus a stamp holding the pom's hash)
    data/              Kafka's log.dirs (topics and the KRaft metadata log)
    logs/              server.log, controller.log (log4j2) and broker.out (the JVM's stdout/stderr)
    server.properties  rendered from deploy/kafka/server.properties
    broker.pid
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tickerwire.core.errors import BrokerError, ConfigError
from tickerwire.core.logging import get_logger

if TYPE_CHECKING:
    from tickerwire.core.settings import Settings

__all__ = [
    "DEPLOY_DIR",
    "REPO_ROOT",
    "BrokerStatus",
    "LocalBroker",
    "UpResult",
    "is_port_free",
    "parse_bootstrap",
    "probe_broker",
]

log = get_logger(__name__)

#: The project checkout: services/tickerwire/adapters/ → parents[3].
REPO_ROOT = Path(__file__).resolve().parents[3]
#: pom.xml, server.properties (template) and log4j2.xml of the local broker.
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"

_LOOPBACK = "127.0.0.1"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
_STAMP = ".tickerwire-libs.sha256"
_MAIN_CLASS = "kafka.Kafka"
_MVN_TIMEOUT_S = 900
_T = TypeVar("_T")


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Split the first ``host:port`` of a bootstrap string; raise ConfigError when malformed."""
    first = bootstrap.split(",")[0].strip()
    host, sep, port_text = first.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"kafka bootstrap {bootstrap!r} is not host:port")
    return host, int(port_text)


def is_port_free(port: int, host: str = _LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` (SO_REUSEADDR, as the JVM binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_loopback_ports(count: int, low: int = 20000, high: int = 32000) -> list[int]:
    """``count`` distinct loopback ports nothing listens on, sorted.

    They are drawn below Linux's ephemeral range (32768–60999), so an outgoing connection cannot
    take one as its source port between choosing it and binding it (``bind(0)`` would).
    """
    rng = random.SystemRandom()
    ports: set[int] = set()
    for _ in range(20 * count + 1000):
        if len(ports) == count:
            break
        port = rng.randrange(low, high)
        if port not in ports and is_port_free(port):
            ports.add(port)
    if len(ports) < count:
        raise BrokerError(f"no {count} free loopback ports in {low}-{high}")
    return sorted(ports)


def _is_listening(port: int, host: str = _LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def probe_broker(bootstrap: str, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """The cluster metadata when a broker answers at ``bootstrap`` with a controller, else None."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(int(timeout_s * 1000), 500),
        retry_backoff_ms=100,
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            cluster: dict[str, Any] = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        await admin.close()
    brokers = cluster.get("brokers") or []
    controller = cluster.get("controller_id")
    if not brokers or controller is None or controller < 0:
        return None
    return cluster


def _run_sync(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from sync code, on a private loop in a worker thread.

    The thread keeps this safe inside a running loop, and leaves the caller's current event loop
    untouched (``asyncio.run`` in this thread would reset it to None).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-probe") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding, never starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the ")" that closes the command name.
    state = stat.rpartition(")")[2].split()[0:1]
    if state == ["Z"]:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
        return f"{_LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class UpResult:
    """The outcome of ``up()``: ``started`` is False when the broker was already running."""

    status: BrokerStatus
    started: bool
    elapsed_s: float


class LocalBroker:
    """One local KRaft Kafka node on 127.0.0.1, driven by a pid file under ``data_dir``.

    Every method is safe to call from a fresh process: state lives on disk, not in this object.
    """

    def __init__(
        self,
        port: int,
        data_dir: Path,
        libs_dir: Path,
        heap: str = "512m",
        *,
        controller_port: int | None = None,
        partitions: int = 3,
        node_id: int = 1,
        deploy_dir: Path = DEPLOY_DIR,
    ) -> None:
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        if not (0 < self.port < 65536 and 0 < self.controller_port < 65536):
            raise ConfigError(f"kafka ports out of range: {self.port}, {self.controller_port}")
        if self.port == self.controller_port:
            raise ConfigError("the kafka broker and controller ports must differ")
        self.data_dir = data_dir.resolve()
        self.libs_dir = libs_dir.resolve()
        self.heap = heap
        self.partitions = partitions
        self.node_id = node_id
        self.deploy_dir = deploy_dir.resolve()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        """The broker of ``tickerwire kafka up``: port from kafka_bootstrap, state in kafka_dir."""
        host, port = parse_bootstrap(settings.kafka_bootstrap)
        if host not in _LOOPBACK_NAMES:
            raise ConfigError(
                f"the local broker listens on {_LOOPBACK} only; "
                f"TICKERWIRE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} names another host"
            )
        return cls(
            port,
            settings.kafka_dir,
            settings.kafka_dir / "libs",
            settings.kafka_heap,
            partitions=settings.kafka_partitions,
        )

    # Paths ------------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{_LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        """Kafka's ``log.dirs``: the topic data and the KRaft metadata log."""
        return self.data_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        """The broker's main log (log4j2)."""
        return self.logs_dir / "server.log"

    @property
    def stdout_file(self) -> Path:
        """The JVM's stdout and stderr."""
        return self.logs_dir / "broker.out"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def pom_path(self) -> Path:
        return self.deploy_dir / "pom.xml"

    # Jars -------------------------------------------------------------------------------------

    def _pom_hash(self) -> str:
        try:
            return hashlib.sha256(self.pom_path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(f"cannot read the Kafka pom at {self.pom_path}: {exc}") from exc

    def _jars_complete(self, pom_hash: str) -> bool:
        stamp = self.libs_dir / _STAMP
        try:
            return stamp.read_text().strip() == pom_hash and any(self.libs_dir.glob("kafka_*.jar"))
        except OSError:
            return False

    def ensure_jars(self) -> bool:
        """Make ``libs_dir`` hold exactly the pom's jars; True if it had to download them.

        Skipped when the stamp matches the pom's hash. Safe against concurrent callers (flock), and
        a failed download leaves the previous cache untouched.
        """
        pom_hash = self._pom_hash()
        if self._jars_complete(pom_hash):
            return False
        parent = self.libs_dir.parent
        with _file_lock(parent / ".libs.lock"):
            if self._jars_complete(pom_hash):
                return False
            mvn = shutil.which("mvn")
            if mvn is None:
                raise BrokerError("Maven (mvn) is not on PATH; it is needed once to fetch the jars")
            tmp = parent / f".libs-tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("kafka.jars.download", pom=str(self.pom_path), into=str(self.libs_dir))
            started = time.monotonic()
            try:
                proc = subprocess.run(
                    [
                        mvn,
                        "-q",
                        "-B",
                        "-f",
                        str(self.pom_path),
                        "dependency:copy-dependencies",
                        f"-DoutputDirectory={tmp}",
                        "-DincludeScope=runtime",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=_MVN_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise BrokerError(
                    f"downloading the Kafka jars took over {_MVN_TIMEOUT_S}s; giving up"
                ) from exc
            if proc.returncode != 0 or not any(tmp.glob("kafka_*.jar")):
                shutil.rmtree(tmp, ignore_errors=True)
                output = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
                raise BrokerError(
                    f"downloading the Kafka jars failed (mvn exit {proc.returncode}):\n{output}"
                )
            (tmp / _STAMP).write_text(pom_hash + "\n")
            old = parent / f".libs-old-{os.getpid()}"
            if self.libs_dir.exists():
                self.libs_dir.rename(old)
            tmp.rename(self.libs_dir)
            shutil.rmtree(old, ignore_errors=True)
            log.info("kafka.jars.ready", seconds=round(time.monotonic() - started, 1))
            return True

    # Process bookkeeping ----------------------------------------------------------------------

    def _is_our_broker(self, pid: int) -> bool:
        """True when ``pid`` is alive and is ``kafka.Kafka`` running this data dir's config."""
        if not _pid_alive(pid):
            return False
        args = _cmdline(pid)
        return _MAIN_CLASS in args and str(self.config_path) in args

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
            listening=_is_listening(self.port),
        )

    # Start ------------------------------------------------------------------------------------

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").is_file():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH (Kafka 4 needs Java 17 or newer)")
        return java

    def _jvm_options(self) -> list[str]:
        return [
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.deploy_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            f"{self.libs_dir}/*",
        ]

    def _render_config(self) -> None:
        template = Template((self.deploy_dir / "server.properties").read_text())
        text = template.substitute(
            node_id=self.node_id,
            port=self.port,
            controller_port=self.controller_port,
            log_dir=self.log_dirs,
            partitions=self.partitions,
        )
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    def _format_storage(self) -> None:
        """Format ``log.dirs`` on first run (KRaft needs a cluster id and metadata bootstrap)."""
        if (self.log_dirs / "meta.properties").exists():
            return
        cluster_id = _new_cluster_id()
        log.info("kafka.storage.format", cluster_id=cluster_id, log_dirs=str(self.log_dirs))
        proc = subprocess.run(
            [
                self._java(),
                *self._jvm_options(),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self.config_path),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data_dir,
        )
        if proc.returncode != 0:
            output = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise BrokerError(f"formatting the Kafka storage failed:\n{output}")

    def up(self, timeout: float = 90.0) -> UpResult:
        """Start the broker unless it already runs; return once it answers metadata requests.

        A stale pid file (dead process, or a pid now used by something else) is removed first. A
        port taken by another process, a broker that exits, or one that does not answer within
        ``timeout`` seconds raises BrokerError with the tail of its log; a broker that timed out
        is stopped again.
        """
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / ".broker.lock"):
            pid = self._running_pid()
            if pid is not None:
                log.info("kafka.already_running", pid=pid, port=self.port)
                return UpResult(self.status(), started=False, elapsed_s=0.0)
            for port in (self.port, self.controller_port):
                # A broker that just crashed may hold its sockets for a moment longer.
                deadline = time.monotonic() + 15.0
                while not is_port_free(port) and time.monotonic() < deadline:
                    time.sleep(0.25)
                if not is_port_free(port):
                    raise BrokerError(
                        f"port {_LOOPBACK}:{port} is already in use by another process "
                        "(not this tickerwire broker); stop it or choose another port with "
                        "TICKERWIRE_KAFKA_BOOTSTRAP (the controller uses port + 1)"
                    )
            self.ensure_jars()
            for folder in (self.log_dirs, self.logs_dir):
                folder.mkdir(parents=True, exist_ok=True)
            self._render_config()
            self._format_storage()
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
        command = [self._java(), *self._jvm_options(), _MAIN_CLASS, str(self.config_path)]
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
        while True:
            if not _pid_alive(pid):
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) exited during start-up; "
                    f"log tail:\n{self._log_tail()}"
                )
            if _is_listening(self.port) and _run_sync(lambda: probe_broker(self.bootstrap, 3.0)):
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} in time; "
                    f"stopped it. Log tail:\n{self._log_tail()}"
                )
            time.sleep(0.25)

    def _log_tail(self) -> str:
        parts = []
        for path in (self.stdout_file, self.log_file):
            tail = _tail(path, 25)
            if tail:
                parts.append(f"--- {path} ---\n{tail}")
        return "\n".join(parts) or "(no log output)"

    # Stop -------------------------------------------------------------------------------------

    def _stop_pid(self, pid: int, timeout: float) -> None:
        """SIGTERM, wait up to ``timeout`` for a clean shutdown, then SIGKILL."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            log.warning("kafka.kill", pid=pid, reason=f"no clean shutdown within {timeout}s")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10.0
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL")

    def down(self, timeout: float = 30.0) -> bool:
        """Stop our broker (SIGTERM, SIGKILL after ``timeout``); False when none was running."""
        if not self.data_dir.exists():
            return False
        with _file_lock(self.data_dir / ".broker.lock"):
            pid = self._running_pid()
            if pid is None:
                return False
            started = time.monotonic()
            self._stop_pid(pid, timeout)
            self.pid_file.unlink(missing_ok=True)
        log.info("kafka.stopped", pid=pid, seconds=round(time.monotonic() - started, 2))
        return True
