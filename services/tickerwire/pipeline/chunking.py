"""Token-aware chunking with content-addressed chunk ids.

A chunk's id is ``uuid5(NAMESPACE, doc_id + ":" + sha256(embed_text))``: the same text of the same
document always gets the same id, so re-sending a document changes nothing and a new version
re-embeds only the chunks whose text changed.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


#: Longest section heading kept in a context header, in characters (cut at a word boundary).
SECTION_HEADING_CHARS = 64
#: Token budget reserved for the section part of a context header.
SECTION_HEADER_TOKENS = 20

# "Item 7. Management's Discussion ..." or "ITEM 7A \n \nQuantitative ..." (10-K / 10-Q items).
_SECTION_RE = re.compile(
    r"^[ \t]*item[ \t]+(?P<num>\d{1,2}[a-c]?)\b\.?[ \t]*(?:\n[ \t]*)*(?P<name>[^\n]*)",
    re.IGNORECASE | re.MULTILINE,
)


def section_headings(text: str) -> list[tuple[int, str]]:
    """(offset, heading) of each filing item heading in ``text`` ("Item 7. Management's ...")."""
    out: list[tuple[int, str]] = []
    for match in _SECTION_RE.finditer(text):
        name = " ".join(match.group("name").split()).rstrip(" .")
        if name[:1].isdigit() or name.lower().startswith("item"):
            name = ""  # a table of contents row or a page number, not the item's name
        label = f"Item {match.group('num').upper()}"
        heading = f"{label}. {name}" if name else label
        if len(heading) > SECTION_HEADING_CHARS:
            heading = heading[:SECTION_HEADING_CHARS].rsplit(" ", 1)[0]
        out.append((match.start(), heading))
    return out


def metadata_header(
    *,
    title: str,
    doc_type: str | None,
    tickers: Sequence[str],
    metadata: Mapping[str, Any],
) -> str:
    """A one-line context header from a document's metadata, then its title; may be ``""``.

    ``"3M (MMM) | 10-K | FY2018 | <title>"``: the company (``metadata.company``) with its
    tickers, the form (``metadata.form``, else the document type), the fiscal period
    (``metadata.fiscal_period``) and the title when there is one. With neither a company, a
    ticker nor a period it is just the title (a document type alone tells nothing apart). Pure.
    """
    company = " ".join(str(metadata.get("company") or "").split())
    ticker_text = ", ".join(t for t in tickers if t and t.upper() not in company.upper())
    who = f"{company} ({ticker_text})" if company and ticker_text else company or ticker_text
    title = " ".join(title.split())
    form = " ".join(str(metadata.get("form") or "").split()) or (doc_type or "")
    period = " ".join(str(metadata.get("fiscal_period") or "").split())
    if not who and not period:
        # A bare document type says nothing that tells documents apart: the title alone.
        return title
    parts = [p for p in (who, form.replace("_", " "), period, title) if p]
    return " | ".join(parts)


def chunk_document(
    *,
    doc_id: str,
    title: str,
    text: str,
    max_tokens: int,
    overlap: int,
    make_splitter: Callable[[int, int], Splitter],
    count_tokens: Callable[[str], int],
    header: str | None = None,
    sections: bool = False,
) -> list[Chunk]:
    """Split ``text`` into chunks whose embedded text (header + chunk) fits ``max_tokens``.

    Splits prefer paragraph, then line, then sentence boundaries (semantic-text-splitter), so a
    table whose rows are lines stays whole when it fits. Identical chunk texts within one document
    are kept once. An empty text yields no chunks. ``make_splitter(capacity, overlap)`` must
    measure chunks with ``count_tokens`` (a body that fits is then one chunk without splitting).

    The header is ``header`` when given (e.g. :func:`metadata_header`), else the title. With
    ``sections``, each chunk's header also names the filing item the chunk is in ("Item 7. ...",
    the last :func:`section_headings` entry at or before the chunk's start), when there is one.
    """
    if not text.strip():
        return []
    if header is None:
        header = title_header(title)
    elif header.strip():
        header = " ".join(header.split()) + "\n\n"
    else:
        header = ""
    if sections:
        headings = section_headings(text)
        if headings:
            return _chunk_with_sections(
                doc_id, header, text, headings, max_tokens, overlap, make_splitter, count_tokens
            )
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
    pieces = (p.strip() for p in splitter.chunks(text))
    return _unique_chunks(
        doc_id, ((header, p, header_tokens + count_tokens(p)) for p in pieces if p)
    )


def _unique_chunks(doc_id: str, items: Iterable[tuple[str, str, int]]) -> list[Chunk]:
    """Chunks of (header, piece, token count) items, in order, each distinct embed text once."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for header, piece, tokens in items:
        chunk = _chunk(doc_id, header, len(chunks), piece, tokens)
        if chunk.chunk_id in seen:
            continue
        seen.add(chunk.chunk_id)
        chunks.append(chunk)
    return chunks


#: Bodies of up to this many characters per token of budget are counted before being split: the
#: count is cheap next to the splitter, and bodies that short usually fit (English text averages
#: four to five characters per word piece).
_FAST_PATH_CHARS_PER_TOKEN = 8


def _chunk_with_sections(
    doc_id: str,
    header: str,
    text: str,
    headings: list[tuple[int, str]],
    max_tokens: int,
    overlap: int,
    make_splitter: Callable[[int, int], Splitter],
    count_tokens: Callable[[str], int],
) -> list[Chunk]:
    base = header.rstrip("\n")
    base_tokens = count_tokens(base) if base else 0
    body_capacity = max(max_tokens // 2, max_tokens - base_tokens - SECTION_HEADER_TOKENS)
    splitter = make_splitter(body_capacity, min(overlap, body_capacity // 4))

    def items() -> Iterator[tuple[str, str, int]]:
        cursor = 0
        for raw in splitter.chunks(text):
            piece = raw.strip()
            if not piece:
                continue
            # Chunks come in text order, each starting after the one before (overlap or not).
            found = text.find(piece, cursor)
            start = found if found >= 0 else cursor
            cursor = start + 1
            # The section the chunk is in: the last heading that starts before the chunk ends,
            # so a chunk that opens a section carries that section's name.
            current = [h for offset, h in headings if offset < start + len(piece)]
            line = " | ".join(p for p in (base, current[-1] if current else "") if p)
            chunk_header = f"{line}\n\n" if line else ""
            tokens = count_tokens(chunk_header) if chunk_header else 0
            yield chunk_header, piece, tokens + count_tokens(piece)

    return _unique_chunks(doc_id, items())


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
