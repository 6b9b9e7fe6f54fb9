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
    are kept once. An empty text yields no chunks. ``make_splitter(capacity, overlap)`` must
    measure chunks with ``count_tokens`` (a body that fits is then one chunk without splitting).
    """
    if not text.strip():
        return []
    header = title_header(title)
    header_tokens = count_tokens(header) if header else 0
    # A very long title may not starve the body: it always keeps at least half the budget.
    body_capacity = max(max_tokens // 2, max_tokens - header_tokens)
    body_overlap = min(overlap, body_capacity // 4)
    body = text.strip()
    # Fast path: a body that fits the budget is the splitter's one chunk (the splitter measures
    # with the same count as ``count_tokens``, so it would return the whole, trimmed text). Most
    # news items are this short, and splitting costs ~1 ms per document even then. A body with
    # many more characters than the budget has tokens goes straight to the splitter, so long
    # documents are not tokenized once more for nothing.
    if len(body) <= body_capacity * _FAST_PATH_CHARS_PER_TOKEN:
        body_tokens = count_tokens(body)
        if body_tokens <= body_capacity:
            return [_chunk(doc_id, header, 0, body, header_tokens + body_tokens)]
    splitter = make_splitter(body_capacity, body_overlap)
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for piece in splitter.chunks(text):
        piece = piece.strip()
        if not piece:
            continue
        chunk = _chunk(doc_id, header, len(chunks), piece, header_tokens + count_tokens(piece))
        if chunk.chunk_id in seen:
            continue
        seen.add(chunk.chunk_id)
        chunks.append(chunk)
    return chunks


#: Bodies of up to this many characters per token of budget are counted before being split: the
#: count is cheap next to the splitter, and bodies that short usually fit (English text averages
#: four to five characters per word piece).
_FAST_PATH_CHARS_PER_TOKEN = 8


def _chunk(doc_id: str, header: str, index: int, piece: str, token_count: int) -> Chunk:
    embed_text = header + piece
    return Chunk(
        chunk_id=chunk_id_for(doc_id, embed_text),
        index=index,
        text=piece,
        embed_text=embed_text,
        content_hash=sha256_hex(piece),
        token_count=token_count,
    )
