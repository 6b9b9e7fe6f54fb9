"""Kafka topic administration: load ``schemas/topics.yaml`` and create its topics idempotently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from tickerwire.adapters.kafka_errors import check_login
from tickerwire.adapters.kafka_options import KafkaConnection, connection_options, describe
from tickerwire.core.errors import BrokerError, ConfigError
from tickerwire.core.logging import get_logger
from tickerwire.core.schemas import schema_dir

__all__ = [
    "TOPICS_FILE",
    "TopicSpec",
    "TopicsResult",
    "admin_client",
    "delete_topics",
    "describe_topic_configs",
    "ensure_topics",
    "list_topics",
    "load_topic_specs",
]

log = get_logger(__name__)

#: The repository's topic catalogue: services/tickerwire/adapters/ → parents[3] is the repo root.
TOPICS_FILE = Path(__file__).resolve().parents[3] / "schemas" / "topics.yaml"

_CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete", "delete,compact"})


@dataclass(frozen=True)
class TopicSpec:
    """One topic of ``topics.yaml``; ``None`` partitions/replication mean the settings' default."""

    name: str
    partitions: int | None = None
    replication: int | None = None
    cleanup_policy: str = "delete"
    config: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    schemas: tuple[str, ...] = ()

    def topic_config(self) -> dict[str, str]:
        """The broker-side topic configs: ``cleanup.policy`` plus the extra ``config``."""
        return {"cleanup.policy": self.cleanup_policy, **self.config}


@dataclass(frozen=True)
class TopicsResult:
    """What ``ensure_topics`` did: topics it created, and those that already existed."""

    created: list[str]
    existing: list[str]


def _spec_from_entry(entry: object, path: Path) -> TopicSpec:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{path}: every topic needs a string `name`, got {entry!r}")
    name: str = entry["name"]

    def _positive(key: str) -> int | None:
        value = entry.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{path}: topic {name}: `{key}` must be a positive integer")
        return value

    policy = str(entry.get("cleanup_policy", "delete")).replace(" ", "")
    if policy not in _CLEANUP_POLICIES:
        raise ConfigError(f"{path}: topic {name}: unknown cleanup_policy {policy!r}")
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: topic {name}: `config` must be a mapping")
    schemas = entry.get("schemas") or []
    if not isinstance(schemas, list):
        raise ConfigError(f"{path}: topic {name}: `schemas` must be a list")
    key = entry.get("key")
    return TopicSpec(
        name=name,
        partitions=_positive("partitions"),
        replication=_positive("replication"),
        cleanup_policy=policy,
        config={str(k): str(v) for k, v in config.items()},
        key=str(key) if key is not None else None,
        schemas=tuple(str(s) for s in schemas),
    )


def load_topic_specs(path: Path | None = None) -> list[TopicSpec]:
    """Parse ``topics.yaml`` (default: the one beside the JSON Schemas, see ``schema_dir``).

    Raises ConfigError when the file is missing or malformed, or names a topic twice.
    """
    path = path or schema_dir() / "topics.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the topics file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("topics"), list):
        raise ConfigError(f"{path}: expected a top-level `topics:` list")
    specs = [_spec_from_entry(entry, path) for entry in document["topics"]]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: topics listed twice: {', '.join(duplicates)}")
    return specs


@asynccontextmanager
async def admin_client(
    bootstrap: KafkaConnection, timeout_s: float = 30.0
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, always closed on exit; BrokerError when the broker is unreachable."""
    options = connection_options(bootstrap)
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=int(timeout_s * 1000))
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await admin.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await check_login(options)  # a refused login or certificate is fatal, and says so
            raise BrokerError(f"cannot reach Kafka at {describe(bootstrap)}: {exc!r}") from exc
        yield admin
    finally:
        await admin.close()


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    """(topic, error_code, message) of a CreateTopics or DeleteTopics response, any version."""
    obj = response.to_object()
    rows = obj.get("topic_errors") or obj.get("topic_error_codes") or []
    return [(row["topic"], row["error_code"], row.get("error_message")) for row in rows]


async def ensure_topics(
    bootstrap: KafkaConnection,
    specs: Sequence[TopicSpec],
    *,
    partitions: int = 3,
    replication: int = 1,
    timeout_s: float = 30.0,
) -> TopicsResult:
    """Create every topic of ``specs`` that does not exist yet; existing ones are left as they are.

    ``partitions`` and ``replication`` apply to specs that leave them unset. Any error other than
    "already exists" raises BrokerError naming the topic.
    """
    if not specs:
        return TopicsResult(created=[], existing=[])
    new_topics = [
        NewTopic(
            name=spec.name,
            num_partitions=spec.partitions or partitions,
            replication_factor=spec.replication or replication,
            topic_configs=spec.topic_config(),
        )
        for spec in specs
    ]
    async with admin_client(bootstrap, timeout_s) as admin:
        try:
            response = await admin.create_topics(new_topics, timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            raise BrokerError(f"creating topics on {describe(bootstrap)} failed: {exc!r}") from exc
    created: list[str] = []
    existing: list[str] = []
    failures: list[str] = []
    for topic, code, message in _topic_errors(response):
        if code == 0:
            created.append(topic)
        elif code == TopicAlreadyExistsError.errno:
            existing.append(topic)
        else:
            failures.append(f"{topic}: {for_code(code).__name__} {message or ''}".strip())
    if failures:
        raise BrokerError("creating topics failed: " + "; ".join(failures))
    log.info("kafka.topics", created=created, existing=existing)
    return TopicsResult(created=created, existing=existing)


async def list_topics(bootstrap: KafkaConnection, timeout_s: float = 30.0) -> list[str]:
    """Every topic name the cluster reports, sorted (internal topics included)."""
    async with admin_client(bootstrap, timeout_s) as admin:
        try:
            return sorted(await admin.list_topics())
        except KafkaError as exc:
            raise BrokerError(f"listing topics on {describe(bootstrap)} failed: {exc!r}") from exc


async def topic_partitions(
    bootstrap: KafkaConnection, topic: str, timeout_s: float = 30.0
) -> list[int]:
    """The partition numbers of ``topic`` (empty when it does not exist)."""
    async with admin_client(bootstrap, timeout_s) as admin:
        try:
            described = await admin.describe_topics([topic])
        except KafkaError as exc:
            raise BrokerError(
                f"describing {topic} on {describe(bootstrap)} failed: {exc!r}"
            ) from exc
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code", 0) == 0:
            return sorted(int(p["partition"]) for p in entry.get("partitions", []))
    return []


async def delete_topics(
    bootstrap: KafkaConnection, names: Iterable[str], timeout_s: float = 30.0
) -> None:
    """Delete the named topics; unknown names are ignored."""
    names = list(names)
    if not names:
        return
    async with admin_client(bootstrap, timeout_s) as admin:
        try:
            response = await admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            raise BrokerError(f"deleting topics on {describe(bootstrap)} failed: {exc!r}") from exc
    unknown_topic = 3  # UNKNOWN_TOPIC_OR_PARTITION
    failures = [
        f"{topic}: {for_code(code).__name__}"
        for topic, code, _ in _topic_errors(response)
        if code not in (0, unknown_topic)
    ]
    if failures:
        raise BrokerError("deleting topics failed: " + "; ".join(failures))


async def describe_topic_configs(
    bootstrap: KafkaConnection, topics: Iterable[str], timeout_s: float = 30.0
) -> dict[str, dict[str, str]]:
    """The effective configs of each topic (defaults included), as ``{topic: {name: value}}``."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
    if not resources:
        return {}
    async with admin_client(bootstrap, timeout_s) as admin:
        try:
            responses = await admin.describe_configs(resources)
        except KafkaError as exc:
            raise BrokerError(
                f"describing topic configs on {describe(bootstrap)} failed: {exc!r}"
            ) from exc
    result: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                error = for_code(resource["error_code"]).__name__
                raise BrokerError(f"describing {resource['resource_name']} failed: {error}")
            result[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_value"] is not None
            }
    return result
