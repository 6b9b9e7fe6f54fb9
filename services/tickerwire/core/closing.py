"""The async-context-manager half of every closeable adapter, written once."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """``async with resource:`` closes it on exit; subclasses give an idempotent ``aclose``."""

    async def aclose(self) -> None:
        """Release the resource; safe to call more than once."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
