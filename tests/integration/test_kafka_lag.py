"""Consumer lag against a real broker: end offsets minus the group's committed offsets."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tests.kafka_support import run_async
from tickerwire.adapters.kafka_lag import StageLagReader, consumer_lag
from tickerwire.core.errors import BrokerError

pytestmark = pytest.mark.kafka


async def _produce_and_commit(bootstrap: str, topic: str, group: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, count in ((0, 5), (1, 3)):
            for i in range(count):
                await producer.send_and_wait(topic, f"v{i}".encode(), partition=partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit(
            {
                TopicPartition(topic, 0): OffsetAndMetadata(2, ""),
                TopicPartition(topic, 1): OffsetAndMetadata(3, ""),
            }
        )
    finally:
        await consumer.stop()


def test_lag_is_end_minus_committed_per_partition(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    (topic,) = kafka_topics(partitions=2, prefix="lag")
    group = f"lag-{uuid.uuid4().hex[:8]}"
    run_async(lambda: _produce_and_commit(kafka_bootstrap, topic, group))

    lag = run_async(lambda: consumer_lag(kafka_bootstrap, [group, f"{group}-never"]))

    assert lag == {(group, topic, 0): 3, (group, topic, 1): 0}


def test_unreachable_broker_is_a_broker_error() -> None:
    from tests.kafka_support import free_port

    with pytest.raises(BrokerError, match="cannot reach Kafka"):
        run_async(lambda: consumer_lag(f"127.0.0.1:{free_port()}", ["g"]))


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
