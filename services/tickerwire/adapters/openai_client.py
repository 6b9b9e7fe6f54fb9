"""The one way tickerwire builds an OpenAI-compatible client (embeddings and chat)."""

from __future__ import annotations

from typing import Any

import openai
from pydantic import SecretStr

from tickerwire.core.settings import Settings


def openai_client(
    api_key: SecretStr | None, base_url: str | None, timeout_s: float
) -> openai.AsyncOpenAI:
    """An async client with the SDK's own retries off (tenacity retries, in one place per use).

    The key goes to the client and nowhere else: not to logs, not to repr. A local
    OpenAI-compatible server (``base_url``) may need none.
    """
    return openai.AsyncOpenAI(
        api_key=api_key.get_secret_value() if api_key is not None else "unused",
        base_url=base_url,
        max_retries=0,
        timeout=timeout_s,
    )


def connection(settings: Settings, **arguments: Any) -> dict[str, Any]:
    """Constructor arguments of an OpenAI adapter: the connection of ``settings`` (key, base
    URL), then ``arguments`` (the adapter's own settings and the caller's overrides)."""
    return {"api_key": settings.openai_api_key, "base_url": settings.openai_base_url, **arguments}
