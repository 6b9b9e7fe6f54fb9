"""Topic and stage names have one definition (core.topics), and topics.yaml agrees with it."""

from __future__ import annotations

from typing import get_args

from tickerwire.adapters.kafka_admin import TOPICS_FILE, load_topic_specs
from tickerwire.core import records, topics
from tickerwire.stages import app, base


def test_topics_yaml_names_exactly_the_defined_topics() -> None:
    assert {spec.name for spec in load_topic_specs(TOPICS_FILE)} == set(topics.ALL_TOPICS)


def test_every_stage_consumes_a_defined_topic_and_may_dead_letter() -> None:
    assert set(topics.STAGE_INPUT) == set(topics.ALL_STAGES) == set(get_args(topics.StageName))
    assert set(topics.STAGE_INPUT.values()) <= set(topics.ALL_TOPICS)
    assert set(get_args(records.Stage)) == {"produce", *topics.ALL_STAGES}
    assert app.ALL_STAGES is topics.ALL_STAGES
    assert base.DLQ_TOPIC is topics.DLQ_TOPIC
