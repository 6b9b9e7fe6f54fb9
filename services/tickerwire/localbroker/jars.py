"""The broker's jars: fetched once from Maven Central with ``deploy/kafka/pom.xml``, then cached.

The cache folder holds a stamp with the pom's hash; a cache whose stamp matches is never touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from tickerwire.core.errors import BrokerError, ConfigError
from tickerwire.core.logging import get_logger
from tickerwire.localbroker.files import file_lock

log = get_logger(__name__)

STAMP = ".tickerwire-libs.sha256"
_MVN_TIMEOUT_S = 900


def _pom_hash(pom_path: Path) -> str:
    try:
        return hashlib.sha256(pom_path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"cannot read the Kafka pom at {pom_path}: {exc}") from exc


def jars_complete(libs_dir: Path, pom_hash: str) -> bool:
    """True when ``libs_dir`` holds the jars of the pom whose hash is ``pom_hash``."""
    try:
        stamp = (libs_dir / STAMP).read_text().strip()
    except OSError:
        return False
    return stamp == pom_hash and any(libs_dir.glob("kafka_*.jar"))


def ensure_jars(libs_dir: Path, pom_path: Path) -> bool:
    """Make ``libs_dir`` hold exactly the pom's jars; True if it had to download them.

    Skipped when the stamp matches the pom's hash. Safe against concurrent callers (flock), and
    a failed download leaves the previous cache untouched.
    """
    pom_hash = _pom_hash(pom_path)
    if jars_complete(libs_dir, pom_hash):
        return False
    parent = libs_dir.parent
    with file_lock(parent / ".libs.lock"):
        if jars_complete(libs_dir, pom_hash):
            return False
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("Maven (mvn) is not on PATH; it is needed once to fetch the jars")
        tmp = parent / f".libs-tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("kafka.jars.download", pom=str(pom_path), into=str(libs_dir))
        started = time.monotonic()
        _download(mvn, pom_path, tmp)
        (tmp / STAMP).write_text(pom_hash + "\n")
        old = parent / f".libs-old-{os.getpid()}"
        if libs_dir.exists():
            libs_dir.rename(old)
        tmp.rename(libs_dir)
        shutil.rmtree(old, ignore_errors=True)
        log.info("kafka.jars.ready", seconds=round(time.monotonic() - started, 1))
        return True


def _download(mvn: str, pom_path: Path, into: Path) -> None:
    """``mvn dependency:copy-dependencies`` into ``into``; BrokerError (no folder) on failure."""
    try:
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom_path),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={into}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=_MVN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise BrokerError(
            f"downloading the Kafka jars took over {_MVN_TIMEOUT_S}s; giving up"
        ) from exc
    if proc.returncode != 0 or not any(into.glob("kafka_*.jar")):
        shutil.rmtree(into, ignore_errors=True)
        output = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise BrokerError(
            f"downloading the Kafka jars failed (mvn exit {proc.returncode}):\n{output}"
        )
