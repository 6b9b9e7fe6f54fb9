"""The local broker's lifecycle against a real JVM: its own LocalBroker, port and temp dir."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import KAFKA_LIBS
from tests.kafka_support import create_unique_topics, free_ports, run_async
from tickerwire.core.errors import BrokerError
from tickerwire.localbroker import LocalBroker

pytestmark = pytest.mark.kafka


def _broker(tmp_path: Path) -> LocalBroker:
    port, controller_port = free_ports(2)
    return LocalBroker(
        port, tmp_path / "kafka", KAFKA_LIBS, "256m", controller_port=controller_port
    )


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"doc-1")
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(values) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            values.extend(
                record.value for records in batches.values() for record in records if record.value
            )
    finally:
        await consumer.stop()
    return values


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] == "Z":
            return
        time.sleep(0.05)


def test_broker_starts_once_survives_kill_9_with_its_data_and_stops(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    assert not broker.status().running

    first = broker.up(timeout=120)
    assert first.started
    assert first.status.running
    assert first.status.pid is not None
    assert broker.pid_file.read_text().strip() == str(first.status.pid)
    assert broker.log_file.exists()
    print(f"broker start (first run, incl. storage format): {first.elapsed_s:.2f}s")

    again = broker.up(timeout=120)
    assert not again.started
    assert again.status.pid == first.status.pid

    status = broker.status()
    assert status.running
    assert status.port == broker.port
    assert status.data_dir == broker.data_dir
    assert status.listening

    (topic,) = run_async(lambda: create_unique_topics(broker.bootstrap, prefix="crash"))
    run_async(lambda: _produce(broker.bootstrap, topic, [b"one", b"two", b"three"]))

    # A crash: kill -9 leaves a stale pid file and unflushed logs behind.
    os.kill(first.status.pid, signal.SIGKILL)
    _wait_dead(first.status.pid)
    assert broker.pid_file.exists()
    assert not broker.status().running
    assert not broker.pid_file.exists(), "status() cleans a stale pid file"

    broker.pid_file.write_text(f"{first.status.pid}\n")  # stale again: up() must cope too
    recovered = broker.up(timeout=120)
    assert recovered.started
    assert recovered.status.pid != first.status.pid
    print(f"broker start after kill -9 (log recovery): {recovered.elapsed_s:.2f}s")
    values = run_async(lambda: _consume_all(broker.bootstrap, topic, 3))
    assert values == [b"one", b"two", b"three"]

    assert broker.down(timeout=30)
    assert not broker.pid_file.exists()
    assert not broker.status().running
    assert not broker.status().listening
    assert not broker.down(), "a second down() finds nothing to stop"


def test_up_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", broker.port))
        other.listen()
        with pytest.raises(BrokerError, match=f"127.0.0.1:{broker.port} is already in use"):
            broker.up(timeout=30)
    assert not broker.pid_file.exists()


def test_a_pid_file_naming_another_process_is_stale_and_never_signalled(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    broker.data_dir.mkdir(parents=True)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka broker

    status = broker.status()

    assert not status.running
    assert status.pid is None
    assert not broker.pid_file.exists()
    assert not broker.down()
