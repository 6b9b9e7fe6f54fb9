"""The async-context-manager half of every closeable adapter, written once."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """``async with resource:`` closes it on exit.

    A subclass either gives ``_close`` and sets ``self._closed = False`` in its constructor
    (``aclose`` then runs ``_close`` once, however often it is called), or overrides an
    idempotent ``aclose`` itself.
    """

    _closed: bool

    async def aclose(self) -> None:
        """Release the resource; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._close()

    async def _close(self) -> None:
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
