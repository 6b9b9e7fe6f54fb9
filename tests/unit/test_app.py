"""faust wiring that needs no broker: the consumer the stages run on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tickerwire.core.settings import load_settings
from tickerwire.stages.app import FETCH_MAX_WAIT_MS, PromptFetchConsumer, StageDeps, build_app
from tickerwire.stages.base import InMsg
from tickerwire.stages.sequencing import LedgerConsumer


async def _ignore(batch: Sequence[InMsg]) -> None:
    return None


async def test_stage_consumer_commits_sequenced_offsets_and_fetches_with_a_short_broker_wait(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, fetch_max_wait_ms=250
    )
    app = build_app(
        StageDeps(
            settings=settings,
            stages=("embed",),
            make_handlers=lambda app, table: {"embed": _ignore},
        )
    )
    consumer = app.consumer
    assert isinstance(consumer, PromptFetchConsumer)
    assert isinstance(consumer, LedgerConsumer)
    assert type(consumer).sequencer is not None
    # The aiokafka consumer faust builds (not started: no broker is contacted).
    client = consumer._thread._create_worker_consumer(app.transport)
    try:
        assert client._fetch_max_wait_ms == 250
        assert FETCH_MAX_WAIT_MS == load_settings().fetch_max_wait_ms == 100
    finally:
        await client.stop()
        consumer._thread.thread_loop.close()  # made for the consumer thread, never started
