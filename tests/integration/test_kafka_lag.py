"""Consumer lag against a real broker: end offsets minus the group's committed offsets."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tests.kafka_support import run_async
from tickerwire.adapters.kafka_lag import consumer_lag
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
