"""The one place that turns ``TICKERWIRE_EMBEDDER`` into an :class:`Embedder`."""

from __future__ import annotations

from tickerwire.core.ports import Embedder
from tickerwire.core.settings import Settings


def open_embedder(settings: Settings) -> Embedder:
    """The configured embedder, ready to use; the caller owns it and must ``aclose()`` it.

    ``local`` loads and verifies the offline ONNX model (about 2 s, ModelFilesError when its files
    are missing or altered); ``openai`` needs ``OPENAI_API_KEY`` unless ``OPENAI_BASE_URL`` points
    at a server that takes none.
    """
    if settings.embedder == "openai":
        from tickerwire.adapters.embed_openai import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    from tickerwire.adapters.embed_local import LocalEmbedder

    # ``embed_threads`` unset means every core this process may use.
    return LocalEmbedder(threads=settings.embed_threads, workers=settings.embed_workers)
