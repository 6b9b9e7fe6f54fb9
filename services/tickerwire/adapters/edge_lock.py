"""The owner lock of an Edge index directory: one process at a time may open the shard."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from tickerwire.core.errors import ConfigError

LOCK_FILE = "tickerwire.lock"


class OwnerLock:
    """An exclusive, non-blocking fcntl lock on ``dir/tickerwire.lock``, held until release."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"the Qdrant Edge shard at {self.path.parent} is in use by another process "
                f"(pid {owner}); Edge allows one owning process per shard directory. Stop it, "
                "or point TICKERWIRE_DATA_DIR elsewhere, or use TICKERWIRE_QDRANT_URL."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
