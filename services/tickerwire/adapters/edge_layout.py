"""The layout of an Edge index directory: shard generations and the ``current`` link.

::

    tickerwire.lock     fcntl lock: one owning process; holds the owner's pid
    current             symlink to the live shard directory
    shard-000001/       an Edge shard (segments, WAL, edge_config.json)
    shard-000002/       while an optimization runs: the copy being optimized
    reindex/            while ``tickerwire reindex`` runs: the rebuilt index (same layout)
"""

from __future__ import annotations

import os
from pathlib import Path

SHARD_PREFIX = "shard-"
CURRENT_LINK = "current"


def shard_dir_name(generation: int) -> str:
    """The directory name of shard generation ``generation`` (``shard-000001``)."""
    return f"{SHARD_PREFIX}{generation:06d}"


def generation(path: Path) -> int:
    """The generation number of a shard directory."""
    return int(path.name.removeprefix(SHARD_PREFIX))


def current_shard(root: Path) -> Path | None:
    """The live shard directory of the index at ``root`` (None before the first shard)."""
    link = root / CURRENT_LINK
    return root / link.readlink() if link.is_symlink() else None


def point_link(root: Path, shard_dir: Path) -> None:
    """Atomically point ``root/current`` at ``shard_dir`` (symlink + rename + fsync)."""
    tmp = root / f"{CURRENT_LINK}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(shard_dir.name)
    tmp.replace(root / CURRENT_LINK)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
