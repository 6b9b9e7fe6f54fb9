"""BatchingStream.noack_batches: full batches at once, partial ones after a window, no polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest

from tickerwire.stages.batching import BatchingStream


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    # No broker is contacted: agent.test_context() feeds the agent through an in-memory channel.
    app = faust.App(
        "batching-test",
        broker="kafka://127.0.0.1:9",
        store="memory://",
        datadir=str(tmp_path),
        Stream=BatchingStream,
        web_enabled=False,
        autodiscover=False,
    )
    yield app
    # The stream made a consumer, whose thread loop is created up front and never started.
    consumer: Any = app.consumer
    consumer._thread.thread_loop.close()


async def test_batches_are_full_at_once_or_partial_after_the_window_from_their_first_event(
    app: faust.App,
) -> None:
    got: list[tuple[list[Any], float]] = []

    @app.agent(app.channel())
    async def agent(stream: Any) -> None:
        assert isinstance(stream, BatchingStream)
        async for events in stream.noack_batches(3, 0.2):
            got.append(([e.value for e in events], time.perf_counter()))
            for event in events:
                await stream.ack(event)

    async with agent.test_context() as tested:
        started = time.perf_counter()
        for i in range(7):
            await tested.put(i)
        for _ in range(100):
            if len(got) == 3:
                break
            await asyncio.sleep(0.02)
        assert [values for values, _ in got] == [[0, 1, 2], [3, 4, 5], [6]]
        assert got[1][1] - started < 0.15  # full: handed over without waiting for the window
        assert got[2][1] - started >= 0.19  # partial: after the window

        # After an idle spell, the window opens when the next event arrives, not on a tick.
        await asyncio.sleep(0.5)
        put_at = time.perf_counter()
        await tested.put(99)
        for _ in range(100):
            if len(got) == 4:
                break
            await asyncio.sleep(0.02)
        assert got[3][0] == [99]
        assert 0.19 <= got[3][1] - put_at < 0.4


async def test_an_idle_stream_waits_without_waking_up(app: faust.App) -> None:
    waits: list[Any] = []

    @app.agent(app.channel())
    async def agent(stream: Any) -> None:
        real_wait = stream.wait_for_stopped

        async def counting_wait(*args: Any, **kwargs: Any) -> bool:
            waits.append(kwargs.get("timeout"))
            result: bool = await real_wait(*args, **kwargs)
            return result

        stream.wait_for_stopped = counting_wait
        async for events in stream.noack_batches(100, 0.005):
            for event in events:
                await stream.ack(event)

    async with agent.test_context() as tested:
        await tested.put(1)
        await asyncio.sleep(0.3)
        # One wait for the first event, one window, then one untimed wait for the next event;
        # faust's noack_take woke every 5 ms, about 60 times here.
        assert len(waits) <= 4, waits
        assert waits[-1] is None
