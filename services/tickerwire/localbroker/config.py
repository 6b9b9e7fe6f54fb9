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
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from aiokafka.helpers import create_ssl_context

from tickerwire.core.errors import BrokerError, ConfigError
from tickerwire.core.logging import get_logger
from tickerwire.localbroker.network import LOOPBACK

log = get_logger(__name__)

#: The project checkout: services/tickerwire/localbroker/ → parents[3].
REPO_ROOT = Path(__file__).resolve().parents[3]
#: Where an installed wheel has deploy/kafka/ (package data, see pyproject's force-include).
PACKAGED_DEPLOY_DIR = Path(__file__).resolve().parent / "kafka"
#: pom.xml, server.properties (template) and log4j2.xml of the local broker: the wheel's copy
#: when installed, the repository's deploy/kafka/ in a checkout.
DEPLOY_DIR = (
    PACKAGED_DEPLOY_DIR
    if (PACKAGED_DEPLOY_DIR / "pom.xml").is_file()
    else REPO_ROOT / "deploy" / "kafka"
)
#: The JVM main class of a Kafka server.
MAIN_CLASS = "kafka.Kafka"


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding, never starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


_CREDENTIAL = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class SaslSslListener:
    """The client listener as SASL_SSL: TLS from PEM files, and users who may log in with
    SCRAM-SHA-512 (credentials stored at format time) or PLAIN (listed in the JAAS config).

    ``keystore`` holds the broker's private key (unencrypted PKCS#8) and its certificate chain,
    ``truststore`` the CA certificate. The broker talks to itself as ``admin``, which is one
    of ``users``. The controller listener stays plain text on loopback (KRaft quorum only).
    """

    keystore: Path
    truststore: Path
    users: Mapping[str, str] = field(repr=False)
    admin: str

    def __post_init__(self) -> None:
        if self.admin not in self.users:
            raise ConfigError(f"the broker's own user {self.admin!r} is not among the users")
        for name, password in self.users.items():
            if not (_CREDENTIAL.match(name) and _CREDENTIAL.match(password)):
                raise ConfigError(
                    f"user {name!r}: names and passwords of the local broker must match "
                    f"{_CREDENTIAL.pattern} (they are written into server.properties)"
                )

    def properties(self) -> str:
        """The lines appended to ``server.properties``."""
        plain_users = " ".join(f'user_{n}="{p}"' for n, p in self.users.items())
        admin_password = self.users[self.admin]
        return "\n".join(
            [
                "############################# SASL_SSL listener #############################",
                "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
                "sasl.mechanism.inter.broker.protocol=PLAIN",
                "listener.name.sasl_ssl.plain.sasl.jaas.config="
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{self.admin}" password="{admin_password}" {plain_users};',
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={self.keystore.resolve()}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.truststore.resolve()}",
                "ssl.client.auth=none",
                "",
            ]
        )

    def format_arguments(self) -> list[str]:
        """``--add-scram`` options of the storage format: a SCRAM-SHA-512 credential per user."""
        args: list[str] = []
        for name, password in self.users.items():
            args += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return args

    def client_options(self, bootstrap: str) -> dict[str, Any]:
        """aiokafka options with which the broker's own user reaches this listener."""
        return {
            "bootstrap_servers": bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.admin,
            "sasl_plain_password": self.users[self.admin],
            "ssl_context": create_ssl_context(cafile=str(self.truststore)),
        }


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
        sasl_ssl: SaslSslListener | None = None,
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
        #: When set, clients connect with SASL over TLS; else in plain text.
        self.sasl_ssl = sasl_ssl
        # The broker's files, all below data_dir, and the POM that fetches its jars.
        self.config_path = self.data_dir / "server.properties"
        #: Kafka's ``log.dirs``: the topic data and the KRaft metadata log.
        self.log_dirs = self.data_dir / "data"
        self.logs_dir = self.data_dir / "logs"
        #: The broker's main log (log4j2), and the JVM's stdout and stderr.
        self.log_file, self.stdout_file = self.logs_dir / "server.log", self.logs_dir / "broker.out"
        self.pid_file = self.data_dir / "broker.pid"
        self.pom_path = self.deploy_dir / "pom.xml"

    # Address -----------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def client_options(self) -> dict[str, Any]:
        """aiokafka connection options that reach this broker (its own user on SASL_SSL)."""
        if self.sasl_ssl is not None:
            return self.sasl_ssl.client_options(self.bootstrap)
        return {"bootstrap_servers": self.bootstrap}

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
            listener="SASL_SSL" if self.sasl_ssl else "PLAINTEXT",
            security=self.sasl_ssl.properties() if self.sasl_ssl else "",
        )
        tmp = self.config_path.with_suffix(".tmp")
        # Owner-only: with a SASL_SSL listener the file holds the users' passwords.
        tmp.touch(mode=0o600)
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
                *(self.sasl_ssl.format_arguments() if self.sasl_ssl else []),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data_dir,
        )
        if proc.returncode != 0:
            output = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise BrokerError(f"formatting the Kafka storage failed:\n{output}")
