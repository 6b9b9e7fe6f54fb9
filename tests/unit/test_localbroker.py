"""The local broker's pure parts: bootstrap parsing, its configuration, and run_sync."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tickerwire.core.errors import ConfigError
from tickerwire.core.settings import load_settings
from tickerwire.localbroker import BrokerConfig, LocalBroker, parse_bootstrap, run_sync


def test_bootstrap_is_split_into_host_and_port() -> None:
    assert parse_bootstrap("127.0.0.1:19092,other:1") == ("127.0.0.1", 19092)


@pytest.mark.parametrize("bad", ["localhost", ":9092", "host:0", "host:port", "host:70000"])
def test_a_malformed_bootstrap_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="is not host:port"):
        parse_bootstrap(bad)


def test_the_controller_defaults_to_the_next_port_and_must_differ(tmp_path: Path) -> None:
    config = BrokerConfig(20000, tmp_path, tmp_path / "libs")
    assert config.controller_port == 20001
    assert config.bootstrap == "127.0.0.1:20000"
    assert config.server_command()[-2:] == ["kafka.Kafka", str(tmp_path / "server.properties")]
    with pytest.raises(ConfigError, match="must differ"):
        BrokerConfig(20000, tmp_path, tmp_path, controller_port=20000)


def test_the_rendered_config_names_the_ports_and_the_data_dir(tmp_path: Path) -> None:
    config = BrokerConfig(20000, tmp_path, tmp_path / "libs", controller_port=20005)
    config.render_config()
    text = config.config_path.read_text()
    assert "127.0.0.1:20000" in text and "127.0.0.1:20005" in text
    assert str(config.log_dirs) in text


def test_the_broker_of_the_settings_listens_on_loopback_only(tmp_path: Path) -> None:
    broker = LocalBroker.from_settings(
        load_settings(kafka_bootstrap="localhost:19500", data_dir=tmp_path)
    )
    assert broker.port == 19500 and broker.data_dir == (tmp_path / "kafka").resolve()
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1 only"):
        LocalBroker.from_settings(load_settings(kafka_bootstrap="kafka.example:9092"))


async def test_run_sync_works_inside_a_running_loop_and_keeps_it() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    loop = asyncio.get_running_loop()
    assert run_sync(answer) == 42
    assert asyncio.get_running_loop() is loop
