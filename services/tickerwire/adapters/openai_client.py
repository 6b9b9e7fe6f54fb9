"""The one way tickerwire builds an OpenAI-compatible client (embeddings and chat)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Self

import openai
from pydantic import SecretStr

from tickerwire.core.closing import AsyncClosing
from tickerwire.core.errors import ConfigError
from tickerwire.core.metrics import OPENAI_REQUESTS
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


def is_transient_status(status: int) -> bool:
    """True for an HTTP status worth another try: 408, 409, 429 and 5xx."""
    return status in (408, 409, 429) or status >= 500


@contextlib.contextmanager
def counted_request(endpoint: str, transient: Callable[[str], Exception]) -> Iterator[None]:
    """Count one API request by its outcome (``tickerwire_openai_requests_total``).

    A timeout or a lost connection is raised again as ``transient(reason)``. An HTTP error is
    counted by its status, and any other API error as ``invalid_response``; both propagate for
    the caller to classify (:func:`is_transient_status`).
    """
    try:
        yield
    except openai.APITimeoutError as exc:
        OPENAI_REQUESTS.labels(endpoint=endpoint, status="timeout").inc()
        raise transient(f"timed out: {exc.message}") from exc
    except openai.APIConnectionError as exc:
        OPENAI_REQUESTS.labels(endpoint=endpoint, status="connection_error").inc()
        raise transient(f"connection error: {exc.message}") from exc
    except openai.APIStatusError as exc:
        OPENAI_REQUESTS.labels(endpoint=endpoint, status=str(exc.status_code)).inc()
        raise
    except openai.APIError:  # e.g. a body that is not the response the endpoint promises
        OPENAI_REQUESTS.labels(endpoint=endpoint, status="invalid_response").inc()
        raise
    OPENAI_REQUESTS.labels(endpoint=endpoint, status="200").inc()


class OpenAIAdapter(AsyncClosing):
    """What the embedding and chat adapters share: the key check, the model, the client (built
    by :func:`openai_client`) and closing it."""

    def __init__(
        self,
        api_key: SecretStr | None,
        base_url: str | None,
        model: str,
        timeout_s: float,
        *,
        needed_for: str,
    ) -> None:
        if api_key is None and base_url is None:
            raise ConfigError(f"OPENAI_API_KEY is not set (needed for {needed_for})")
        self._model = model
        self._base_url = base_url
        self._client = openai_client(api_key, base_url, timeout_s)
        self._closed = False

    #: Constructor argument -> the Settings field it is read from by :meth:`from_settings`.
    SETTINGS: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Self:
        """Build from ``settings``: the connection (key, base URL) and the fields named in
        :attr:`SETTINGS`; keyword overrides win."""
        own = {argument: getattr(settings, field) for argument, field in cls.SETTINGS.items()}
        connection = {"api_key": settings.openai_api_key, "base_url": settings.openai_base_url}
        return cls(**(connection | own | overrides))

    async def _close(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
