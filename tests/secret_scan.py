"""The secrets tests configure, and the scan of captured output for them (tests/conftest.py).

A test that configures an API key, a Kafka password or an OpenAI key registers it with
:func:`register_secret`; the session then fails if any registered value appears in the captured
stdout, stderr or log records of a test, or in a ``*.log``/``*.out`` file under the session's
temporary folder (the logs of the worker and broker processes the tests start).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

#: Shorter values are not secrets worth scanning for (and would match by chance).
MIN_LENGTH = 8
#: Environment variables whose values are secrets when a test run has them.
SECRET_ENV = (
    "OPENAI_API_KEY",
    "TICKERWIRE_OPENAI_API_KEY",
    "TICKERWIRE_API_KEYS",
    "TICKERWIRE_KAFKA_SASL_PASSWORD",
    "TICKERWIRE_QDRANT_API_KEY",
)
#: Files scanned at the end of the session, and how much of each.
LOG_SUFFIXES = (".log", ".out")
MAX_FILE_BYTES = 64 * 1024 * 1024

_secrets: set[str] = set()


def register_secret(value: str) -> str:
    """Scan every captured output of this session for ``value``; returns it, for constants."""
    if len(value) >= MIN_LENGTH:
        _secrets.add(value)
    return value


def register_environment(environ: dict[str, str] | None = None) -> None:
    """Register the secrets the environment configures (comma-separated for API keys)."""
    env = os.environ if environ is None else environ
    for name in SECRET_ENV:
        for part in env.get(name, "").split(","):
            register_secret(part.strip())


def registered() -> frozenset[str]:
    return frozenset(_secrets)


def leaked(texts: Iterable[str], secrets: Iterable[str] | None = None) -> list[str]:
    """The secrets that occur in any of ``texts`` (masked, so the report does not leak them)."""
    pool = registered() if secrets is None else frozenset(secrets)
    joined = "\n".join(texts)
    return sorted(mask(s) for s in pool if s in joined)


def leaked_in_files(root: Path, secrets: Iterable[str] | None = None) -> dict[Path, list[str]]:
    """Log files under ``root`` that hold a secret, with the (masked) secrets found."""
    pool = [s.encode() for s in (registered() if secrets is None else secrets)]
    found: dict[Path, list[str]] = {}
    if not pool or not root.is_dir():
        return found
    for path in root.rglob("*"):
        if path.suffix not in LOG_SUFFIXES or not path.is_file():
            continue
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES)
        hits = sorted(mask(s.decode()) for s in pool if s in data)
        if hits:
            found[path] = hits
    return found


def mask(secret: str) -> str:
    """A secret shown in a report: its first two characters and its length."""
    return f"{secret[:2]}…({len(secret)} chars)"
