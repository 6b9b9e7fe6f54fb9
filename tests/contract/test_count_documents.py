"""``count_documents`` (distinct documents, for /v1/status) on both back ends."""

from __future__ import annotations

import pytest

from tickerwire.core.ports import VectorIndex
from tickerwire.query.live import CountsDocuments

from ._corpus import DOCS

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_count_documents_counts_each_document_once(loaded: VectorIndex) -> None:
    assert isinstance(loaded, CountsDocuments)
    assert await loaded.count_documents() == len(DOCS)
    assert await loaded.count() > len(DOCS)  # several chunks per document
    await loaded.apply_commits([("d1", [])])
    assert await loaded.count_documents() == len(DOCS) - 1


async def test_count_documents_of_an_empty_index_is_zero(index: VectorIndex) -> None:
    assert isinstance(index, CountsDocuments)
    assert await index.count_documents() == 0
