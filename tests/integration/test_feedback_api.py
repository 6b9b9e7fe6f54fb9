"""POST /v1/feedback and query_id in /v1/search, in-process: validation, the key check, the
recorded records, and 503 when the log is off or full."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.integration.test_ask_api import DOCS, QUESTION
from tests.query_support import load_index, query_app
from tickerwire.adapters.index_edge import EdgeIndex
from tickerwire.core.records import FeedbackRecord, QueryLogRecord
from tickerwire.core.settings import Settings
from tickerwire.core.topics import FEEDBACK_TOPIC, QUERIES_TOPIC
from tickerwire.query.learning import QueryRecorder, key_hasher

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "feedback-test-key"
QID = "0123456789abcdef0123456789abcdef"


class Sink:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.items: list[tuple[str, bytes, bytes]] = []

    def offer(self, topic: str, key: bytes, value: bytes) -> bool:
        if self.accept:
            self.items.append((topic, key, value))
        return self.accept


@pytest_asyncio.fixture(loop_scope="session")
async def index(tmp_path: Path) -> AsyncIterator[EdgeIndex]:
    async with await load_index(tmp_path / "edge", DOCS) as idx:
        yield idx


def client(index: EdgeIndex, sink: Sink | None) -> httpx.AsyncClient:
    app = query_app(
        index,
        Settings(api_keys=[KEY], ask_min_evidence=0.3),  # type: ignore[list-item]
        recorder=QueryRecorder(sink) if sink is not None else None,
        hash_key=key_hasher(b"salt"),
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    )


async def test_search_and_ask_return_query_ids_that_are_logged_with_the_key_hashed(
    index: EdgeIndex,
) -> None:
    sink = Sink()
    async with client(index, sink) as http:
        found = (await http.post("/v1/search", json={"query": QUESTION})).json()
        answered = (await http.post("/v1/ask", json={"question": QUESTION})).json()
    logged = [QueryLogRecord.from_bytes(v) for t, _, v in sink.items if t == QUERIES_TOPIC]
    assert [r.query_id for r in logged] == [found["query_id"], answered["query_id"]]
    assert [r.endpoint for r in logged] == ["search", "ask"]
    assert logged[1].answer == answered["answer"] and logged[1].context
    assert {r.key_hash for r in logged} == {key_hasher(b"salt")(KEY)}
    assert all(KEY.encode() not in v for _, _, v in sink.items)


async def test_feedback_is_accepted_and_logged(index: EdgeIndex) -> None:
    sink = Sink()
    body: dict[str, Any] = {"query_id": QID, "rating": -1, "wrong_citations": [2]}
    async with client(index, sink) as http:
        resp = await http.post("/v1/feedback", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": True, "query_id": QID}
    topic, key, value = sink.items[0]
    assert (topic, key) == (FEEDBACK_TOPIC, QID.encode())
    assert FeedbackRecord.from_bytes(value).wrong_citations == (2,)


@pytest.mark.parametrize(
    "body",
    [
        {"query_id": "not-an-id", "rating": 1},
        {"query_id": QID, "rating": 0},
        {"query_id": QID, "rating": 1, "wrong_citations": [0]},
        {"query_id": QID, "rating": 1, "extra": True},
    ],
)
async def test_bad_feedback_is_a_422(index: EdgeIndex, body: dict[str, Any]) -> None:
    async with client(index, Sink()) as http:
        assert (await http.post("/v1/feedback", json=body)).status_code == 422


async def test_feedback_needs_the_key_and_a_log(index: EdgeIndex) -> None:
    body = {"query_id": QID, "rating": 1}
    async with client(index, Sink()) as http:
        resp = await http.post("/v1/feedback", json=body, headers={"Authorization": "Bearer x"})
        assert resp.status_code == 401
    async with client(index, None) as http:
        assert (await http.post("/v1/feedback", json=body)).status_code == 503
    async with client(index, Sink(accept=False)) as http:
        resp = await http.post("/v1/feedback", json=body)
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
