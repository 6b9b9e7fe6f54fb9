"""Fixtures for the VectorIndex contract suite: both back ends, one tiny handmade corpus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ._corpus import CORPUS, ConcreteIndex, open_backend


@pytest_asyncio.fixture(params=["edge", "server"], loop_scope="session")
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConcreteIndex]:
    """An empty index of each kind."""
    idx = await open_backend(request.param, tmp_path)
    try:
        yield idx
    finally:
        await idx.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def loaded(index: ConcreteIndex) -> ConcreteIndex:
    """The index with the handmade corpus upserted."""
    await index.upsert(CORPUS)
    return index
