"""schemathesis against the query API's own OpenAPI schema: every operation of the app that
``tickerwire up`` and ``tickerwire query`` serve (``runtime.query_app``), with a valid key.

No response may be a 500, and every response must match the schema: its status code is
documented, its content type is, and its body validates. ``/v1/events`` is left out: it is an
endless event stream (tests/unit/test_live.py and the UI test cover it). Examples per operation:
``TICKERWIRE_FUZZ_EXAMPLES`` (default 100, for CI; raise it for a longer run).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from tests.query_support import SPARSE, BagOfWordsEmbedder, doc, load_index
from tests.secret_scan import register_secret
from tickerwire.adapters.query_log import KafkaQueryLog
from tickerwire.core.settings import Settings
from tickerwire.query.ask import OfflineAnswerer
from tickerwire.query.events import EventBroadcaster
from tickerwire.query.live import LiveDeps
from tickerwire.runtime import Resources, query_app

KEY = register_secret("fuzz-api-key-5c1d9e")
EXAMPLES = int(os.environ.get("TICKERWIRE_FUZZ_EXAMPLES", "100"))
DOCS = [
    doc("news:a", "Acme reported revenue of $1,234 million in Q3.", tickers=["ACME"]),
    doc("filing:b", "Globex 10-K: net income rose 12% to $88 million.", tickers=["GBX"]),
]


class MemoryProducer:
    """Takes what the query log sends, with no network: the app runs on the event loop of the
    test client's portal thread, which outlives this module, so a log pointed at an absent
    broker would go on reconnecting there through every later test."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None
    ) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings_ = Settings(
        api_keys=KEY, api_rate_limit="100000/minute", kafka_bootstrap="127.0.0.1:9"
    )
    index = asyncio.run(load_index(tmp_path_factory.mktemp("fuzz") / "edge", DOCS))
    res = Resources(settings=settings_, embedder=BagOfWordsEmbedder(), sparse=SPARSE, index=index)
    res.query_log = KafkaQueryLog(settings_, producer_factory=MemoryProducer)  # type: ignore[arg-type]
    app = query_app(res, OfflineAnswerer(), LiveDeps(events=EventBroadcaster()))
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    yield schema.exclude(path="/v1/events")
    asyncio.run(index.aclose())


def test_no_operation_errs_or_leaves_its_schema(api_schema: Any) -> None:
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            # 503 is a documented answer (not ready, no log): a 500 never is. A 422 for a
            # schema-valid request is right where a rule spans fields ("since before until").
            response = case.call_and_validate(
                headers={"X-API-Key": KEY},
                excluded_checks=[not_a_server_error, positive_data_acceptance],
            )
            assert response.status_code != 500, response.text

        fuzz()
        checked.append(operation.label)
    assert {"POST /v1/search", "POST /v1/ask", "GET /v1/status"} <= set(checked), checked
