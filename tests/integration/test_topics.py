"""Topic bootstrap from schemas/topics.yaml against the session's real broker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tickerwire.adapters.kafka_admin import (
    TOPICS_FILE,
    describe_topic_configs,
    ensure_topics,
    list_topics,
    load_topic_specs,
)
from tickerwire.core.errors import ConfigError

STABLE_TOPICS = {
    "tickerwire.docs.raw",
    "tickerwire.docs.chunks",
    "tickerwire.docs.vectors",
    "tickerwire.docs.dlq",
}


def test_topics_yaml_names_the_stable_topics() -> None:
    specs = {spec.name: spec for spec in load_topic_specs(TOPICS_FILE)}
    assert set(specs) >= STABLE_TOPICS
    assert specs["tickerwire.docs.raw"].cleanup_policy == "compact"
    assert specs["tickerwire.docs.raw"].topic_config()["cleanup.policy"] == "compact"


def test_a_malformed_topics_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "topics.yaml"
    bad.write_text("topics:\n  - name: a\n    cleanup_policy: shred\n")
    with pytest.raises(ConfigError, match="unknown cleanup_policy"):
        load_topic_specs(bad)


@pytest.mark.kafka
async def test_topic_bootstrap_is_idempotent(kafka_bootstrap: str) -> None:
    specs = load_topic_specs()

    # The session fixture already created them: a second run reports them, raises nothing.
    result = await ensure_topics(kafka_bootstrap, specs)

    assert result.created == []
    assert set(result.existing) == {spec.name for spec in specs}
    assert set(await list_topics(kafka_bootstrap)) >= STABLE_TOPICS


@pytest.mark.kafka
async def test_topics_get_their_cleanup_policy_and_extra_config(kafka_bootstrap: str) -> None:
    configs = await describe_topic_configs(
        kafka_bootstrap, ["tickerwire.docs.raw", "tickerwire.docs.dlq"]
    )

    assert configs["tickerwire.docs.raw"]["cleanup.policy"] == "compact"
    assert configs["tickerwire.docs.raw"]["min.compaction.lag.ms"] == "60000"
    assert configs["tickerwire.docs.dlq"]["cleanup.policy"] == "delete"
    assert configs["tickerwire.docs.dlq"]["retention.ms"] == "2592000000"


@pytest.mark.kafka
def test_kafka_topics_makes_fresh_topics(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    first, second = kafka_topics(2, prefix="fixture", partitions=2)

    assert first != second
    assert first.startswith("fixture.")
