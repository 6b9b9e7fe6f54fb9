"""The chunker with whitespace-separated words as tokens, as the chunking tests run it."""

from __future__ import annotations

from functools import partial

from semantic_text_splitter import TextSplitter

from tickerwire.pipeline.chunking import chunk_document


def words(text: str) -> int:
    """Token count: the whitespace-separated words of ``text``."""
    return len(text.split())


def word_splitter(capacity: int, overlap: int) -> TextSplitter:
    """A splitter that measures chunks in :func:`words`."""
    return TextSplitter.from_callback(words, capacity, overlap)


#: chunk_document with word counts as tokens and no overlap (pass doc_id, title, text,
#: max_tokens and, optionally, header and sections).
chunk_words = partial(chunk_document, overlap=0, make_splitter=word_splitter, count_tokens=words)
