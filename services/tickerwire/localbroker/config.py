"""What a local broker is: its ports, its folders, ``server.properties``, the JVM command line.

Layout below ``data_dir`` (``settings.kafka_dir``)::

    libs/              the jars (plus a stamp holding the pom's hash)
    data/              Kafka's log.dirs (topics and the KRaft metadata log)
    logs/              server.log, controller.log (log4j2) and broker.out (the JVM's stdout/stderr)
    server.properties  rendered from deploy/kafka/server.properties
    broker.pid
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from string import Template

from tickerwire.core.errors import BrokerError, ConfigError
from tickerwire.core.logging import get_logger
from tickerwire.localbroker.network import LOOPBACK

log = get_logger(__name__)

#: The project checkout: services/tickerwire/localbroker/ → parents[3].
REPO_ROOT = Path(__file__).resolve().parents[3]
#: pom.xml, server.properties (template) and log4j2.xml of the local broker.
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
#: The JVM main class of a Kafka server.
MAIN_CLASS = "kafka.Kafka"


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding, never starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class BrokerConfig:
    """One KRaft node (broker and controller) on 127.0.0.1: ports, folders and how to run it."""

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

    # Paths ------------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

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

    # The JVM ----------------------------------------------------------------------------------

    def java(self) -> str:
        """``$JAVA_HOME/bin/java``, else ``java`` on PATH; BrokerError when there is none."""
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").is_file():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is not on PATH (Kafka 4 needs Java 17 or newer)")
        return java

    def jvm_options(self) -> list[str]:
        """Heap, GC, logging and class path of every JVM this broker runs."""
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

    def server_command(self) -> list[str]:
        """The command line of the broker itself."""
        return [self.java(), *self.jvm_options(), MAIN_CLASS, str(self.config_path)]

    # Files ------------------------------------------------------------------------------------

    def render_config(self) -> None:
        """Write ``server.properties`` from the deploy template (atomically)."""
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

    def format_storage(self) -> None:
        """Format ``log.dirs`` on first run (KRaft needs a cluster id and metadata bootstrap)."""
        if (self.log_dirs / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        log.info("kafka.storage.format", cluster_id=cluster_id, log_dirs=str(self.log_dirs))
        proc = subprocess.run(
            [
                self.java(),
                *self.jvm_options(),
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
