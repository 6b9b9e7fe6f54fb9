"""The rebuild's checkpoint: positions and preprocess state in one SQLite file."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from tickerwire.core.errors import ConfigError
from tickerwire.core.settings import Settings

#: Settings that change what is indexed: a checkpoint made under others cannot be resumed.
_FINGERPRINT = (
    "embedder",
    "openai_embedding_model",
    "openai_dimensions",
    "chunk_tokens",
    "chunk_overlap",
    "chunk_header",
    "chunk_sections",
    "max_body_bytes",
    "qdrant_url",
    "collection",
    "app_id",
)


def fingerprint(settings: Settings) -> str:
    """A digest of the settings that decide the rebuilt index's contents."""
    data = settings.model_dump(include=set(_FINGERPRINT), mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Checkpoint(MutableMapping[bytes, Any]):
    """The rebuild's positions and preprocess state, in one SQLite file.

    It is the preprocess stage's state table (a mapping, like the faust Table it replaces);
    changes are kept in memory until :meth:`save` writes them with the positions in one
    transaction.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, value BLOB NOT NULL);"
            "CREATE TABLE IF NOT EXISTS positions (partition INTEGER PRIMARY KEY,"
            " next_offset INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        self._state: dict[bytes, Any] = dict(self._db.execute("SELECT key, value FROM state"))
        self._dirty: set[bytes] = set()

    # --- the state table ------------------------------------------------------------------------

    def __getitem__(self, key: bytes) -> Any:
        return self._state[key]

    def __setitem__(self, key: bytes, value: Any) -> None:
        self._state[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: bytes) -> None:
        del self._state[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    # --- positions and metadata -----------------------------------------------------------------

    def positions(self) -> dict[int, int]:
        """The next offset to read per partition (empty: from the beginning)."""
        return dict(self._db.execute("SELECT partition, next_offset FROM positions"))

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def save(self, positions: Mapping[int, int]) -> None:
        """Store the positions and the state changed since the last save, atomically."""
        with self._db:
            for key in self._dirty:
                if key in self._state:
                    self._db.execute(
                        "INSERT OR REPLACE INTO state VALUES (?, ?)", (key, self._state[key])
                    )
                else:
                    self._db.execute("DELETE FROM state WHERE key = ?", (key,))
            self._db.executemany(
                "INSERT OR REPLACE INTO positions VALUES (?, ?)", sorted(positions.items())
            )
        self._dirty.clear()

    def close(self) -> None:
        self._db.close()


def open_checkpoint(path: Path, settings: Settings, restart: bool) -> tuple[Checkpoint, bool]:
    """The checkpoint at ``path`` (new, or resumed when its settings match)."""
    if restart:
        path.unlink(missing_ok=True)
    checkpoint = Checkpoint(path)
    stored = checkpoint.meta("fingerprint")
    if stored is None:
        checkpoint.set_meta("fingerprint", fingerprint(settings))
        return checkpoint, False
    if stored != fingerprint(settings):
        checkpoint.close()
        raise ConfigError(
            f"an interrupted rebuild at {path} was made with other index settings; "
            "run `tickerwire reindex --restart` to throw it away and start over"
        )
    return checkpoint, True
