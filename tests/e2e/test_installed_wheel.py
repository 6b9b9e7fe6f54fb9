"""Installed, not only checked out: a wheel built from the project, installed into a fresh venv,
runs ``tickerwire kafka up``, ``tickerwire topics create`` and ``tickerwire kafka down`` from a
directory that is not the repository (schemas and the broker's files are package data)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_support import free_ports
from tickerwire.localbroker import REPO_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

REPO_LIBS = REPO_ROOT / ".tickerwire" / "kafka" / "libs"


def _uv() -> list[str]:
    exe = shutil.which("uv")
    return [exe] if exe else ["python3", "-m", "uv"]


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (the CLI that started it has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv holding the project's wheel and its locked dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    _run([*_uv(), "build", "--wheel", "-o", str(work / "dist")], cwd=REPO_ROOT, env=env)
    (wheel,) = (work / "dist").glob("tickerwire-*.whl")
    requirements = work / "requirements.txt"
    _run(
        [
            *_uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "-o",
            str(requirements),
        ],
        cwd=REPO_ROOT,
        env=env,
    )
    venv = work / "venv"
    _run([*_uv(), "venv", "--python", sys.executable, str(venv)], cwd=work, env=env)
    _run(
        [
            *_uv(),
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(requirements),
            str(wheel),
        ],
        cwd=work,
        env=env,
    )
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A working directory outside the repository, and the environment of the installed CLI."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    data = tmp_path / "data"
    if REPO_LIBS.is_dir():  # the jars the session broker uses (no second download)
        shutil.copytree(REPO_LIBS, data / "kafka" / "libs")
    port, _ = free_ports(2)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TICKERWIRE_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env |= {
        "HF_HUB_OFFLINE": "1",
        "TICKERWIRE_DATA_DIR": str(data),
        "TICKERWIRE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "TICKERWIRE_LOG_LEVEL": "warning",
    }
    pid_file = data / "kafka" / "broker.pid"
    try:
        yield cwd, env
    finally:
        if pid_file.exists():  # a broker the test started and did not stop: by its pid
            pid = int(pid_file.read_text().strip() or 0)
            if pid > 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_installed_wheel_runs_kafka_and_topics_from_another_directory(
    installed: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    where = _run(
        [str(installed / "python"), "-c", "import tickerwire; print(tickerwire.__file__)"],
        cwd=cwd,
        env=env,
    )
    assert str(REPO_ROOT) not in where and "site-packages" in where, where
    tw = str(installed / "tickerwire")

    started = _run([tw, "kafka", "up", "--timeout", "180"], cwd=cwd, env=env, timeout=900)
    assert "kafka started" in started, started
    pid_file = Path(env["TICKERWIRE_DATA_DIR"]) / "kafka" / "broker.pid"
    pid = int(pid_file.read_text().strip())
    try:
        created = _run([tw, "topics", "create"], cwd=cwd, env=env, timeout=120)
        for topic in ("tickerwire.docs.raw", "tickerwire.docs.chunks", "tickerwire.docs.dlq"):
            assert topic in created, created
        listed = _run([tw, "topics", "list"], cwd=cwd, env=env, timeout=120)
        assert "tickerwire.docs.vectors" in listed, listed
    finally:
        _run([tw, "kafka", "down"], cwd=cwd, env=env, timeout=120)
    assert not _running(pid), f"broker pid {pid} still runs after `kafka down`"
    status = subprocess.run([tw, "kafka", "status"], cwd=cwd, env=env, timeout=60, check=False)
    assert status.returncode == 3  # stopped
    assert not list(cwd.iterdir()), "the CLI wrote into the working directory"
