"""The entity registry learns a company from a streamed document, through the real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

import pytest
from aiokafka import AIOKafkaProducer

from tests.document_support import raw_document
from tickerwire.adapters.entity_feed import EntityFeed
from tickerwire.query.understanding import EntityRegistry, understand
from tickerwire.stages.base import InMsg, OutMsg
from tickerwire.stages.preprocess import ChunkerConfig, PreprocessStage

pytestmark = pytest.mark.kafka


class KafkaSender:
    """Sends stage outputs to the real broker and waits for every acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send_all(self, msgs: Sequence[OutMsg]) -> None:
        futures = [await self._producer.send(m.topic, m.value, key=m.key) for m in msgs]
        await asyncio.gather(*futures)


def _words(text: str) -> int:
    return len(text.split())


class _Splitter:
    def chunks(self, text: str) -> list[str]:
        return [text]


def _raw(doc_id: str, title: str, body: str, tickers: list[str], offset: int) -> InMsg:
    doc = raw_document(
        doc_id, title=title, body=body, tickers=tickers, published_at="2026-11-20T12:00:00Z"
    )
    return InMsg("raw", 0, offset, doc_id.encode(), json.dumps(doc).encode(), (), None)


async def test_a_company_first_seen_in_a_streamed_document_is_understood(
    kafka_bootstrap: str, kafka_topics: Callable[..., list[str]]
) -> None:
    chunks_topic, entities_topic = kafka_topics(2, prefix="entities", cleanup_policy="compact")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    registry = EntityRegistry()
    try:
        stage = PreprocessStage(
            sender=KafkaSender(producer),
            state={},
            chunker=ChunkerConfig(
                make_splitter=lambda capacity, overlap: _Splitter(),
                count_tokens=_words,
                max_tokens=200,
            ),
            max_body_bytes=100_000,
            out_topic=chunks_topic,
            entities_topic=entities_topic,
        )
        await stage.handle(
            [_raw("news:1", "Acme rallies", "Acme Rockets Inc. (NYSE: ACME) rose.", ["ACME"], 0)]
        )
        async with EntityFeed(kafka_bootstrap, registry, topic=entities_topic) as feed:
            async with asyncio.timeout(60):
                await feed.caught_up.wait()
            u = understand("What did Acme Rockets earn in 2026?", registry)
            assert u.entities.tickers == ("ACME",)
            assert u.ticker_filter == ("ACME",)
            # While the feed follows the topic, a company streamed now is learned too.
            await stage.handle(
                [_raw("filing:2", "Globex Corporation Form 10-Q", "Quarterly.", ["GBX"], 1)]
            )
            for _ in range(600):  # up to 60 s
                if registry.tickers_for("globex"):
                    break
                await asyncio.sleep(0.1)
        assert understand("Globex revenue?", registry).entities.tickers == ("GBX",)
    finally:
        await producer.stop()
