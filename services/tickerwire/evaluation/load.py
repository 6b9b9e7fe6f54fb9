"""A bounded search load on the query API: a fixed number of clients searching back to back
over loopback HTTP for a fixed time. The load test and the load benchmark both drive it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

#: Questions of the kind the benchmarks' corpora answer.
QUERIES = ("revenue growth", "operating margin", "Firm3 guidance", "cash flow", "risk factors")


@dataclass
class LoadResult:
    """Latencies (seconds) of every finished request, and every failure as text."""

    seconds: float
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the latencies, in milliseconds (nan without requests)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[rank] * 1000

    def line(self) -> str:
        """One fixed-format summary line."""
        return (
            f"LOAD seconds={self.seconds:.0f} concurrency={self.concurrency} "
            f"requests={len(self.latencies)} errors={len(self.errors)} "
            f"search_p50_ms={self.percentile_ms(50):.1f} "
            f"search_p99_ms={self.percentile_ms(99):.1f}"
        )


async def search_load(
    base_url: str,
    seconds: float,
    *,
    concurrency: int = 8,
    queries: Sequence[str] = QUERIES,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """``concurrency`` clients posting ``/v1/search`` back to back for ``seconds``."""
    result = LoadResult(seconds, concurrency)
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        async with httpx.AsyncClient(
            base_url=base_url, timeout=30.0, headers=dict(headers or {})
        ) as http:
            i = n
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    resp = await http.post("/v1/search", json={"query": queries[i % len(queries)]})
                except httpx.HTTPError as exc:
                    result.errors.append(repr(exc))
                else:
                    if resp.status_code != 200:
                        result.errors.append(f"{resp.status_code} {resp.text[:200]}")
                result.latencies.append(time.perf_counter() - started)
                i += 1

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return result
