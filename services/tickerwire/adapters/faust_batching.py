"""Adaptive batches that sleep while the topic is idle.

faust's ``Stream.noack_take(max_, within)`` wakes every ``within`` seconds whether or not a record
has arrived. With the stages' short windows (5, 10 and 20 ms) an idle worker woke 350 times a
second, which cost it about 7% of a core, CPU the embedder competes for.
:meth:`BatchingStream.noack_batches` has the same contract (a batch is yielded when it holds
``max_`` events or when ``within`` has passed; nothing is acked), but its window opens when the
first record of a batch arrives, and an idle stream waits for that record without a timeout.
It lives in adapters/ because it extends faust's Stream through its private parts (processors,
active generators, passive mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import faust
from faust.types import ChannelT, EventT
from mode.utils.aiter import aiter
from mode.utils.futures import notify


class BatchingStream(faust.Stream):  # type: ignore[type-arg]
    """The stages' faust stream class (``faust.App(Stream=...)``)."""

    def noack_batches(self, max_: int, within: float) -> AsyncGenerator[list[EventT[Any]], None]:
        """Batches of up to ``max_`` events, each within ``within`` s of its first; no acks.

        Acks stay off while the generator runs; the caller acks each event itself once its
        batch is handled. Like faust's ``take``, it is registered with the stream so a stop
        finalizes it.
        """
        agen = self._noack_batches(max_, within)
        self._active_agens.add(agen)
        return agen

    async def _noack_batches(
        self, max_: int, within: float
    ) -> AsyncGenerator[list[EventT[Any]], None]:
        events: list[EventT[Any]] = []
        arrived = asyncio.Event()  # the batch has its first event
        full = asyncio.Event()
        consumed = asyncio.Event()
        # Set while a batch is with the caller: the processor holds new events back until then.
        handing_over: asyncio.Future[None] | None = None

        async def add(value: Any) -> Any:
            nonlocal handing_over
            if handing_over is not None:
                try:
                    await handing_over
                finally:
                    handing_over = None
            event = self.current_event
            if event is None:  # faust sets it before it runs the processors
                await self.crash(RuntimeError("batching stream found no current event"))
                return value
            events.append(event)
            arrived.set()
            if len(events) >= max_:
                full.set()
                consumed.clear()
                # Never more than max_ events in a batch: wait until this one is taken.
                await self.wait(consumed)  # type: ignore[arg-type]
            return value

        acks_were_enabled = self.enable_acks
        self.enable_acks = False
        self.add_processor(add)
        self._enable_passive(cast(ChannelT[Any], aiter(self.channel)))
        try:
            while not self.should_stop:
                if await self.wait_for_stopped(arrived):  # type: ignore[arg-type]
                    break
                if not full.is_set():
                    await self.wait_for_stopped(full, timeout=within)  # type: ignore[arg-type]
                handing_over = self.loop.create_future()
                try:
                    yield list(events)
                finally:
                    events.clear()
                    arrived.clear()
                    notify(handing_over)
                    full.clear()
                    consumed.set()
        finally:
            self.enable_acks = acks_were_enabled
            self._processors.remove(add)
