"""The worker's lag metric: one series per (group, topic, partition), removed when it goes away."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tickerwire.runtime.services import LagCollector


def _lag(group: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "tickerwire_consumer_lag_records",
        {"group": group, "topic": topic, "partition": str(partition)},
    )


async def test_published_series_follow_the_latest_answer() -> None:
    collector = LagCollector("127.0.0.1:1", ["g-unit"], 15.0)
    collector._publish({("g-unit", "t", 0): 5, ("g-unit", "t", 1): 0})
    assert _lag("g-unit", "t", 0) == 5
    assert _lag("g-unit", "t", 1) == 0

    collector._publish({("g-unit", "t", 1): 7})

    assert _lag("g-unit", "t", 0) is None  # the partition left the group's commits
    assert _lag("g-unit", "t", 1) == 7
    collector._publish({})
    assert _lag("g-unit", "t", 1) is None
