"""Per-stage consumer lag read from the real broker: end offsets minus the group's commits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from tickerwire.adapters.kafka_lag import StageLagReader

pytestmark = [pytest.mark.kafka]


async def test_lag_per_stage_from_either_group_layout(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    single, split = kafka_topics(2, prefix="lag", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(6):
            await producer.send_and_wait(single, b"x", partition=i % 2)
            await producer.send_and_wait(split, b"x", partition=i % 2)
    finally:
        await producer.stop()

    async def commit(group: str, offsets: dict[TopicPartition, int]) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(list(offsets))
            await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        finally:
            await consumer.stop()

    app_id = f"lagtest-{single}"
    # "up" layout: one group (app_id) for every stage; "worker" layout: app_id-STAGE.
    await commit(app_id, {TopicPartition(single, 0): 1, TopicPartition(single, 1): 3})
    await commit(f"{app_id}-embed", {TopicPartition(split, 0): 3, TopicPartition(split, 1): 3})
    reader = StageLagReader(
        kafka_bootstrap,
        app_id,
        {"preprocess": single, "embed": split, "index": "tickerwire.docs.vectors"},
        ttl_s=0.0,
    )
    try:
        lags = {lag.stage: lag for lag in await reader.read()}
        assert lags["preprocess"].records == 2
        assert lags["preprocess"].group == app_id
        assert lags["embed"].records == 0
        assert lags["embed"].group == f"{app_id}-embed"
        assert lags["index"].records is None  # nothing committed by either group
        await commit(app_id, {TopicPartition(single, 0): 3})
        assert {lag.stage: lag.records for lag in await reader.read()}["preprocess"] == 0
    finally:
        await reader.aclose()
