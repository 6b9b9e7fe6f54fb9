"""The zero-cost embedder of the framework benchmarks (never in the package)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from tickerwire.adapters.embed_local import ModelFiles
from tickerwire.core.ports import (
    Splitter,
)


class ZeroEmbedder:
    """A zero-cost Embedder for the framework ceiling: vectors from a fixed pool, instantly.

    Token counting and splitting use the real MiniLM tokenizer, so preprocess does its real work.
    """

    def __init__(self, dim: int = 384, pool: int = 64) -> None:
        self._tok = Tokenizer.from_file(str(ModelFiles.installed().tokenizer))
        self._tok.no_truncation()
        self._tok.no_padding()
        rng = np.random.default_rng(7)
        vecs = rng.standard_normal((pool, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        self._pool: list[list[float]] = vecs.tolist()
        self._dim = dim

    @property
    def name(self) -> str:
        return "zero-cost-bench"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return 254

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        splitter: Splitter = TextSplitter.from_huggingface_tokenizer(self._tok, capacity, overlap)
        return splitter

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        n = len(self._pool)
        return [self._pool[len(t) % n] for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self._pool[len(text) % len(self._pool)]

    async def aclose(self) -> None:
        return None
