"""BatchingStream.noack_batches: full batches at once, partial ones after a window, no polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faust
import pytest

from tickerwire.adapters.faust_batching import BatchingStream


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


class Trace(list[Any]):
    """A list that wakes whoever awaits a condition on it whenever it grows."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition`` holds (callers bound the wait with asyncio.timeout)."""
        while not condition():
            self.changed.clear()
            await self.changed.wait()


def record_waits(stream: Any, trace: Trace) -> None:
    """Trace each wait of the batching loop: ("enter", timeout) when it starts, and ("wait",
    timeout, whether its event was set) when it ends."""
    real_wait = stream.wait_for_stopped

    async def traced(event: asyncio.Event, *args: Any, **kwargs: Any) -> bool:
        trace.append(("enter", kwargs.get("timeout")))
        result: bool = await real_wait(event, *args, **kwargs)
        trace.append(("wait", kwargs.get("timeout"), event.is_set()))
        return result

    stream.wait_for_stopped = traced


async def test_batches_are_full_at_once_or_partial_after_the_window_from_their_first_event(
    app: faust.App,
) -> None:
    # Which wait released each batch, instead of wall-clock bounds: a full batch is handed over
    # when it fills (its window wait ends with the batch full, or is skipped), a partial one when
    # its window times out, and after an idle spell the loop waits untimed for the next event.
    trace = Trace()
    batches = lambda: [t[1] for t in trace if t[0] == "batch"]  # noqa: E731

    @app.agent(app.channel())
    async def agent(stream: Any) -> None:
        assert isinstance(stream, BatchingStream)
        record_waits(stream, trace)
        async for events in stream.noack_batches(3, 0.2):
            trace.append(("batch", [e.value for e in events]))
            for event in events:
                await stream.ack(event)

    async with agent.test_context() as tested:
        for i in range(7):
            await tested.put(i)
        async with asyncio.timeout(10):
            await trace.until(lambda: len(batches()) == 3)
        assert batches() == [[0, 1, 2], [3, 4, 5], [6]]

        # After an idle spell, the window opens when the next event arrives, not on a tick.
        async with asyncio.timeout(10):  # the loop waits untimed for the next event
            await trace.until(lambda: trace[-1] == ("enter", None))
        await tested.put(99)
        async with asyncio.timeout(10):
            await trace.until(lambda: len(batches()) == 4)
        assert batches()[3] == [99]

    seq = [t for t in trace if t[0] != "enter"]
    starts = [i for i, t in enumerate(seq) if t[0] == "batch"]
    released = [seq[i - 1] for i in starts]
    # full batches: released by filling up (an untimed wait for the first event may precede)
    assert all(r[2] for r in released[:2]), seq
    # partial batches: released by their 0.2 s window timing out, not by filling up
    assert released[2] == ("wait", 0.2, False), seq
    assert released[3] == ("wait", 0.2, False), seq
    # between the third and fourth batch: one untimed wait for the first event, then the window
    assert seq[starts[2] + 1 : starts[3]] == [("wait", None, True), ("wait", 0.2, False)], seq


async def test_an_idle_stream_waits_without_waking_up(app: faust.App) -> None:
    waits = Trace()

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
        async with asyncio.timeout(10):  # the batch is handed over and the loop waits again
            await waits.until(lambda: len(waits) >= 3)
        await asyncio.sleep(0.3)  # an idle spell: a polling loop would wake about 60 times
        # One wait for the first event, one window, then one untimed wait for the next event;
        # faust's noack_take woke every 5 ms, about 60 times here.
        assert len(waits) <= 4, waits
        assert waits[-1] is None
