"""Waiting on a condition by polling it, with a deadline: one loop for every process supervisor
(the local broker, the evaluation worker) that waits on something it cannot be told about."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float) -> bool:
    """Call ``condition`` every ``interval_s`` seconds until it holds (True) or ``timeout_s``
    seconds have passed (False). It is called at least once; what it raises propagates."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True
