"""What the embedders share: the Embedder port's two calls on top of one batch call."""

from __future__ import annotations

import time
from collections.abc import Sequence

from tickerwire.core.metrics import observe_embed_call


class BatchEmbedder:
    """``embed_documents`` and ``embed_query`` over the subclass's ``_embed`` (one batch of
    texts to unit-norm vectors, in order), with the embedding metrics recorded once."""

    @property
    def name(self) -> str:
        """The model's name, as metrics and the vector records carry it."""
        raise NotImplementedError

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise NotImplementedError

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages; one unit-norm vector per text, in order."""
        if not texts:
            return []
        started = time.perf_counter()
        vectors = await self._embed(texts)
        observe_embed_call(self.name, len(texts), time.perf_counter() - started)
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        """Embed one search query with the same model (no query prefix)."""
        return (await self._embed([text]))[0]
