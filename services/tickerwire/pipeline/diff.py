"""Deciding what a new record of a document means, against that document's stored state.

Pure: the preprocess stage loads the state from its faust Table, calls :func:`plan`, sends what
the plan says, and stores ``plan.new_state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tickerwire.pipeline.chunking import Chunk


class Outcome(StrEnum):
    """What a record did to its document."""

    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class DocState:
    """What the pipeline last committed for a document.

    A deleted document keeps a tombstone: its state with no chunks and ``deleted_at`` (epoch
    seconds of the delete record), so that an upsert older than the delete, arriving late, does
    not bring the document back while the tombstone lasts.
    """

    version: int
    content_hash: str
    chunk_ids: tuple[str, ...]
    meta_hash: str = ""
    deleted_at: float | None = None

    @property
    def deleted(self) -> bool:
        """Whether this is a tombstone."""
        return self.deleted_at is not None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for the faust Table."""
        data: dict[str, Any] = {
            "version": self.version,
            "content_hash": self.content_hash,
            "meta_hash": self.meta_hash,
            "chunk_ids": list(self.chunk_ids),
        }
        if self.deleted_at is not None:
            data["deleted_at"] = self.deleted_at
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocState:
        """Inverse of :meth:`to_json`."""
        deleted_at = data.get("deleted_at")
        return cls(
            version=int(data["version"]),
            content_hash=str(data["content_hash"]),
            chunk_ids=tuple(str(c) for c in data["chunk_ids"]),
            meta_hash=str(data.get("meta_hash", "")),
            deleted_at=None if deleted_at is None else float(deleted_at),
        )


def live_state(
    prev: DocState | None, *, now: float, tombstone_retention_s: float
) -> DocState | None:
    """``prev`` as a plan should see it: a tombstone older than its retention is forgotten."""
    if prev is None or prev.deleted_at is None:
        return prev
    return None if now - prev.deleted_at > tombstone_retention_s else prev


@dataclass(frozen=True, slots=True)
class Plan:
    """Chunks to send on, whether to send a commit, and the state to store (None: keep it)."""

    outcome: Outcome
    emit: Sequence[Chunk] = ()
    commit_ids: tuple[str, ...] | None = None
    new_state: DocState | None = None
    reused: int = 0
    #: The ids of the chunks kept from the previous version, in commit order.
    reused_ids: tuple[str, ...] = ()


def plan_upsert(
    prev: DocState | None,
    *,
    version: int,
    content_hash: str,
    meta_hash: str,
    chunks: Sequence[Chunk],
) -> Plan:
    """Plan an upsert: emit only chunks whose ids the previous commit did not list.

    An older version than the stored one is stale, and so is one no newer than a tombstone's
    (the delete wins); the same content again is unchanged (no output at all). A same-or-newer
    version with other content is an update. A chunk the previous version listed is not sent
    again (its id is its text), even when the metadata changed: the commit names it in
    ``reused_ids`` and the index writes the new metadata and position into its payload.
    """
    if prev is not None and prev.deleted:
        if version <= prev.version:
            return Plan(outcome=Outcome.STALE)
        prev = None
    if prev is not None and version < prev.version:
        return Plan(outcome=Outcome.STALE)
    if prev is not None and content_hash == prev.content_hash:
        return Plan(outcome=Outcome.UNCHANGED)
    known = set(prev.chunk_ids) if prev is not None else set()
    emit = [c for c in chunks if c.chunk_id not in known]
    ids = tuple(c.chunk_id for c in chunks)
    return Plan(
        outcome=Outcome.NEW if prev is None else Outcome.UPDATED,
        emit=emit,
        commit_ids=ids,
        new_state=DocState(
            version=version, content_hash=content_hash, chunk_ids=ids, meta_hash=meta_hash
        ),
        reused=len(chunks) - len(emit),
        reused_ids=tuple(i for i in ids if i in known),
    )


def plan_delete(prev: DocState | None, *, version: int, now: float) -> Plan:
    """Plan a delete: a commit with an empty list, and a tombstone of ``version`` as the state.

    A delete older than the stored version is stale. A delete of an unknown document still sends
    the empty commit, so that points left by an earlier run are removed too.
    """
    if prev is not None and version < prev.version:
        return Plan(outcome=Outcome.STALE)
    tombstone = DocState(version=version, content_hash="", chunk_ids=(), deleted_at=now)
    return Plan(outcome=Outcome.DELETED, commit_ids=(), new_state=tombstone)
