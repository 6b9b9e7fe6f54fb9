"""The one retry policy of the stream, on tenacity; the stage batch path owns it.

Errors say what to do with them (:mod:`tickerwire.core.errors`), and :func:`classify` reads it:

- **retriable** (429, 5xx, timeouts, a broker away): retried with capped exponential backoff and
  full jitter, for as long as the fault lasts. A server's ``retry_after`` wins when it is longer.
  The batch is held meanwhile, so consumption pauses: that is the back-pressure.
- **permanent** (the record itself is bad): not retried; the caller narrows the batch down to
  the bad records and dead-letters only them.
- **fatal** (a rejected API key, bad settings): not retried; the caller stops the worker.

No adapter retries on its own: a retry inside a retry multiplies the attempts and hides the fault
from the layer that can pause the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never
from tenacity.wait import wait_base, wait_random_exponential

from tickerwire.core.errors import TickerwireError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import STAGE_RETRIES

T = TypeVar("T")
Outcome = Literal["retry", "dead_letter", "fatal", "unexpected"]

log = get_logger("tickerwire.stages.retry")


def classify(exc: BaseException) -> Outcome:
    """What the stream does about ``exc``, from the error's class attributes only."""
    if not isinstance(exc, TickerwireError):
        return "unexpected"
    if exc.retriable:
        return "retry"
    if exc.dead_letter:
        return "dead_letter"
    return "fatal"


def is_retriable(exc: BaseException) -> bool:
    """A fault outside the record that may clear: retry it."""
    return classify(exc) == "retry"


def is_fatal(exc: BaseException) -> bool:
    """Errors no retry or dead letter can fix: bad settings, a rejected API key."""
    return classify(exc) == "fatal"


def _any_error(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


class _Wait(wait_base):
    """Capped exponential backoff with full jitter, or the server's Retry-After if longer."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_random_exponential(multiplier=policy.initial, max=policy.maximum)

    def __call__(self, retry_state: RetryCallState) -> float:
        backoff = float(self._backoff(retry_state))
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        after = error.retry_after if isinstance(error, TickerwireError) else None
        if after is None:
            return backoff
        return max(backoff, min(after, self._policy.max_retry_after))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries forever while the predicate holds; waits are capped at ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    #: A server asking for more than this is waited for this long, then asked again.
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        stage: str,
        event: str = "transient_error_retrying",
        retry_on: Callable[[BaseException], bool] = is_retriable,
    ) -> T:
        """``await fn()`` until it succeeds; an error ``retry_on`` rejects is raised at once.

        Each retry is logged as ``event`` and counted in ``tickerwire_stage_retries_total``.
        """

        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            error_class = (
                error.error_class if isinstance(error, TickerwireError) else type(error).__name__
            )
            STAGE_RETRIES.labels(stage=stage, error_class=error_class).inc()
            log.warning(
                event,
                stage=stage,
                error_class=error_class,
                reason=str(error),
                attempt=state.attempt_number,
                delay_s=round(state.upcoming_sleep, 3),
            )

        retrying = AsyncRetrying(
            sleep=self.sleep,
            stop=stop_never,
            wait=_Wait(self),
            retry=retry_if_exception(retry_on),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover - stop_never and reraise=True

    async def until_sent(self, fn: Callable[[], Awaitable[T]], *, stage: str, event: str) -> T:
        """``await fn()`` until it succeeds, whatever it raises: for writes that must land
        (dead letters), where giving up would lose the record."""
        return await self.call(fn, stage=stage, event=event, retry_on=_any_error)


#: The stream's policy: 0.5 s doubling to 30 s, with full jitter.
DEFAULT_POLICY = RetryPolicy()
