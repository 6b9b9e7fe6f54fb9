"""Handing a rebuilt Edge shard over to the process that serves the live one.

``tickerwire reindex`` builds the new shard in ``<index dir>/reindex/`` (an Edge index
directory of its own, with its own lock). The live shard belongs to the worker that holds the
index directory's lock, so the swap has to happen inside that worker. They talk through two
small files in the staging directory:

1. ``handover.json`` phase ``prepare`` (written by reindex): the worker starts journaling every
   write to its live shard, the same journal the optimization uses
   (:class:`~tickerwire.adapters.edge_maintenance.Journal`), and answers in ``handover.ack``
   with a token of its own.
2. reindex then catches up to the raw topic's end offsets *measured after the ack*, closes the
   staging shard and writes phase ``ready`` with that token.
3. The worker, with writes held (reads queue on the shard's executor), moves the staged shard in
   as the next generation, replays the journal onto it, re-points ``current`` atomically, closes
   the old shard and deletes it with the staging directory.

Every raw record either lies below the offsets the rebuild caught up to, or was produced after
the journal started, so the live pipeline wrote it either into the journal or (after the swap)
into the new shard: nothing is lost, and no search ever sees an empty or half-built index.

When no worker holds the lock, reindex takes it itself and swaps offline
(:func:`adopt_offline`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tickerwire.adapters.edge_layout import current_shard, generation, point_link, shard_dir_name
from tickerwire.adapters.edge_lock import OwnerLock
from tickerwire.core.errors import ConfigError

STAGING_DIR = "reindex"
HANDOVER_FILE = "handover.json"
ACK_FILE = "handover.ack"

Phase = Literal["prepare", "ready"]


def staging_root(root: Path) -> Path:
    """Where ``tickerwire reindex`` builds the next shard of the index at ``root``."""
    return root / STAGING_DIR


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # absent, or caught between write and rename of another process
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class Handover:
    """A request of ``tickerwire reindex`` (``handover.json``)."""

    phase: Phase
    dim: int
    token: str | None = None

    @classmethod
    def read(cls, root: Path) -> Handover | None:
        data = _read_json(staging_root(root) / HANDOVER_FILE)
        if data is None or data.get("phase") not in ("prepare", "ready"):
            return None
        return cls(phase=data["phase"], dim=int(data["dim"]), token=data.get("token"))

    def write(self, root: Path) -> None:
        _write_json(
            staging_root(root) / HANDOVER_FILE,
            {"phase": self.phase, "dim": self.dim, "token": self.token, "at": time.time()},
        )


def write_ack(root: Path, *, token: str | None = None, refused: str | None = None) -> None:
    """The worker's answer: journaling under ``token``, or refused with a reason."""
    data: dict[str, Any] = {"pid": os.getpid(), "at": time.time()}
    if refused is not None:
        data["refused"] = refused
    else:
        data["token"] = token
    _write_json(staging_root(root) / ACK_FILE, data)


def read_ack(root: Path) -> dict[str, Any] | None:
    """The worker's answer, if any."""
    return _read_json(staging_root(root) / ACK_FILE)


def clear_request(root: Path) -> None:
    """Remove the request and the answer (a new handover starts clean)."""
    for name in (HANDOVER_FILE, ACK_FILE):
        (staging_root(root) / name).unlink(missing_ok=True)


def new_token() -> str:
    """A token for one handover (an answer to an older request cannot be mistaken for it)."""
    return secrets.token_hex(8)


def move_in(root: Path, staged: Path) -> Path:
    """Move the staged shard into ``root`` as the generation after the live one; returns it."""
    live = current_shard(root)
    target = root / shard_dir_name(1 if live is None else generation(live) + 1)
    shutil.rmtree(target, ignore_errors=True)  # a leftover of a crashed optimization
    staged.rename(target)  # same filesystem: atomic
    return target


def adopt_offline(root: Path) -> Path:
    """Swap the staged shard in while no process serves the index at ``root``; the caller
    holds the index directory's lock (:func:`live_owner_free`).

    Moves the staged shard in, re-points ``current`` and deletes the old shard and the staging
    directory. Returns the new live shard directory.
    """
    staged = current_shard(staging_root(root))
    if staged is None or not staged.is_dir():
        raise ConfigError(f"no rebuilt shard to swap in under {staging_root(root)}")
    old = current_shard(root)
    new = move_in(root, staged)
    point_link(root, new)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging_root(root), ignore_errors=True)
    return new


def live_owner_free(root: Path) -> OwnerLock | None:
    """The index directory's lock when no process holds it (the caller releases it), else
    None: a worker serves the live shard and the swap must go through it."""
    root.mkdir(parents=True, exist_ok=True)
    lock = OwnerLock(root)
    try:
        lock.acquire()
    except ConfigError:
        return None
    return lock
