"""A scriptable OpenAI-compatible server on 127.0.0.1, over real HTTP (aiohttp).

It serves ``/v1/embeddings`` and ``/v1/chat/completions`` (plain and ``stream=true`` SSE). Each
request takes the next scripted :class:`Reply` (a plain success when the script is empty), and
every request is recorded, so tests can check batching, retries, headers and prompts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from aiohttp import web

from tickerwire.core.closing import AsyncClosing


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status, headers, an optional JSON body, and a delay first."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0
    dims: int | None = None  # a success with this many dims instead of the requested ones
    content: str = "OK [1]."  # chat: the assistant's answer


@dataclass
class Recorded:
    """One request as the server saw it."""

    body: dict[str, Any]
    authorization: str | None


def fake_vector(text: str, dims: int) -> list[float]:
    """The deterministic unit vector the server returns for ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dims)
    result: list[float] = (vec / np.linalg.norm(vec)).tolist()
    return result


class FakeOpenAI(AsyncClosing):
    """``async with FakeOpenAI() as server:`` serves ``server.base_url`` until the block ends."""

    def __init__(self, default_dims: int = 1536, reject_containing: str | None = None) -> None:
        self.default_dims = default_dims
        #: Answer 400 to any request with an input containing this text (after the script).
        self.reject_containing = reject_containing
        #: Only these API keys are accepted (401 for any other); None accepts every key.
        self.api_keys: set[str] | None = None
        #: Until this ``time.monotonic()``, every request fails: 503 and 429 (Retry-After: 1) in
        #: turn, as an outage of the embeddings service.
        self.down_until = 0.0
        #: Seeded random failures (:meth:`fail_randomly`): this share of requests fails.
        self.fail_rate = 0.0
        self.fail_timeout_s = 0.0
        self._fail_rng = random.Random(0)
        #: Failures injected at random so far, by kind ("429", "500", "timeout").
        self.injected: Counter[str] = Counter()
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail_randomly(self, rate: float, seed: int, timeout_s: float) -> None:
        """Fail ``rate`` of the requests from now on, chosen by a ``seed``-ed generator: a 429
        (Retry-After: 1), a 500, or a timeout (no answer for ``timeout_s``, which a test sets
        longer than the client's timeout), the three kinds equally often."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        self.fail_rate = rate
        self.fail_timeout_s = timeout_s
        self._fail_rng = random.Random(seed)

    async def _random_failure(self) -> web.Response | None:
        """The injected failure for this request, if the generator picks one."""
        if not self.fail_rate or self._fail_rng.random() >= self.fail_rate:
            return None
        kind = self._fail_rng.choice(("429", "500", "timeout"))
        self.injected[kind] += 1
        if kind == "429":
            return web.json_response(
                {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "1"}
            )
        if kind == "timeout":
            await asyncio.sleep(self.fail_timeout_s)  # the client gives up before this ends
        return web.json_response({"error": {"message": "injected failure"}}, status=500)

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        self.script.extend(replies)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _take(
        self, request: web.Request
    ) -> tuple[dict[str, Any], Reply, web.Response | None]:
        """Record the request, wait the reply's delay; an error response when one is scripted."""
        body = await request.json()
        self.requests.append(Recorded(body, request.headers.get("Authorization")))
        if self.api_keys is not None and request.headers.get("Authorization") not in {
            f"Bearer {key}" for key in self.api_keys
        }:
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return body, Reply(), web.json_response({"error": error}, status=401)
        if time.monotonic() < self.down_until:
            if len(self.requests) % 2:
                overloaded = {"error": {"message": "overloaded"}}
                return body, Reply(), web.json_response(overloaded, status=503)
            limited = web.json_response(
                {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "1"}
            )
            return body, Reply(), limited
        injected = await self._random_failure()
        if injected is not None:
            return body, Reply(), injected
        reply = self.script.popleft() if self.script else Reply()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.in_flight -= 1
        if reply.status != 200:
            payload = reply.body or {
                "error": {"message": f"scripted {reply.status}", "type": "server_error"}
            }
            return (
                body,
                reply,
                web.json_response(payload, status=reply.status, headers=reply.headers),
            )
        return body, reply, None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, reply, error = await self._take(request)
        if error is not None:
            return error
        prompt = sum(max(1, len(str(m.get("content", ""))) // 4) for m in body["messages"])
        completion = max(1, len(reply.content) // 4)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        base = {"id": "chatcmpl-fake", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {**base, "object": "chat.completion.chunk"}
        pieces = [reply.content[i : i + 5] for i in range(0, len(reply.content), 5)]
        for piece in pieces:
            event = {
                **chunk,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(
                f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\n".encode()
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body, reply, error = await self._take(request)
        if error is not None:
            return error
        inputs = body["input"]
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if self.reject_containing and any(self.reject_containing in t for t in inputs):
            message = f"input contains {self.reject_containing!r}, which this server rejects"
            return web.json_response(
                {"error": {"message": message, "type": "invalid_request_error"}}, status=400
            )
        dims = reply.dims or body.get("dimensions") or self.default_dims
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text, dims)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(max(1, len(text) // 4) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            headers=reply.headers,
        )
