"""Token-aware chunking with content-addressed chunk ids.

A chunk's id is ``uuid5(NAMESPACE, doc_id + ":" + sha256(embed_text))``: the same text of the same
document always gets the same id, so re-sending a document changes nothing and a new version
re-embeds only the chunks whose text changed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from tickerwire.core.ports import Splitter

#: Namespace of tickerwire chunk ids (uuid5 of the project URL).
CHUNK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://tickerwire.dev/chunk")


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id_for(doc_id: str, embed_text: str) -> str:
    """The content-addressed id of a chunk: uuid5 of doc_id and the hash of its embedded text."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{doc_id}:{sha256_hex(embed_text)}"))


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of a document, ready for embedding."""

    chunk_id: str
    index: int
    text: str
    embed_text: str
    content_hash: str
    token_count: int


def title_header(title: str) -> str:
    """The header put before every chunk's embedded text (empty when there is no title)."""
    title = " ".join(title.split())
    return f"{title}\n\n" if title else ""


def chunk_document(
    *,
    doc_id: str,
    title: str,
    text: str,
    max_tokens: int,
    overlap: int,
    make_splitter: Callable[[int, int], Splitter],
    count_tokens: Callable[[str], int],
) -> list[Chunk]:
    """Split ``text`` into chunks whose embedded text (title header + chunk) fits ``max_tokens``.

    Splits prefer paragraph, then line, then sentence boundaries (semantic-text-splitter), so a
    table whose rows are lines stays whole when it fits. Identical chunk texts within one document
    are kept once. An empty text yields no chunks.
    """
    if not text.strip():
        return []
    header = title_header(title)
    header_tokens = count_tokens(header) if header else 0
    # A very long title may not starve the body: it always keeps at least half the budget.
    body_capacity = max(max_tokens // 2, max_tokens - header_tokens)
    body_overlap = min(overlap, body_capacity // 4)
    splitter = make_splitter(body_capacity, body_overlap)
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for piece in splitter.chunks(text):
        piece = piece.strip()
        if not piece:
            continue
        embed_text = header + piece
        cid = chunk_id_for(doc_id, embed_text)
        if cid in seen:
            continue
        seen.add(cid)
        chunks.append(
            Chunk(
                chunk_id=cid,
                index=len(chunks),
                text=piece,
                embed_text=embed_text,
                content_hash=sha256_hex(piece),
                token_count=header_tokens + count_tokens(piece),
            )
        )
    return chunks
