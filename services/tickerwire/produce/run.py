"""The ``produce`` use case: read files, send the valid documents, report every rejection.

Entry points (the CLI, tests, scripts) call :func:`produce_paths`; it owns no output format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tickerwire.adapters.kafka_options import KafkaConnection
from tickerwire.core.errors import TickerwireError
from tickerwire.core.logging import get_logger
from tickerwire.core.metrics import PRODUCE_REJECTED
from tickerwire.produce.producer import RAW_TOPIC, DocumentProducer
from tickerwire.produce.readers import (
    Accepted,
    ReadResult,
    Rejection,
    Source,
    discover,
    read_source,
)

__all__ = ["ProduceSummary", "Progress", "produce_paths"]

_log = get_logger(__name__)


class Progress(Protocol):
    """Told about each file as it starts and ends, and about every record's outcome."""

    def files(self, total: int) -> None: ...

    def file_started(self, display: str) -> None: ...

    def file_done(self, display: str) -> None: ...

    def record(self, *, produced: bool) -> None: ...


@dataclass(slots=True)
class ProduceSummary:
    """What a run did: records produced (or, in a dry run, valid) and rejected."""

    produced: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return self.rejected == 0


def _take(records: Iterator[ReadResult], size: int) -> list[ReadResult]:
    batch: list[ReadResult] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            break
    return batch


async def produce_paths(
    paths: Iterable[str | Path],
    *,
    bootstrap_servers: KafkaConnection,
    max_body_bytes: int,
    topic: str = RAW_TOPIC,
    dry_run: bool = False,
    batch_size: int = 500,
    on_rejection: Callable[[Rejection], None] | None = None,
    progress: Progress | None = None,
) -> ProduceSummary:
    """Read every file under ``paths`` and produce the valid documents to ``topic``.

    A rejected record (unreadable, malformed, invalid, too large, or refused by Kafka) is counted,
    passed to ``on_rejection`` and kept in the summary; the rest are still produced. In a dry run
    nothing connects to Kafka and valid documents count as produced. Connection failures raise.
    """
    summary = ProduceSummary(dry_run=dry_run)

    def reject(rejection: Rejection, *, count: bool = True) -> None:
        summary.rejected += 1
        summary.rejections.append(rejection)
        if count:
            PRODUCE_REJECTED.labels(error_class=rejection.error_class).inc()
        if on_rejection is not None:
            on_rejection(rejection)
        if progress is not None:
            progress.record(produced=False)

    found = await asyncio.to_thread(lambda: list(discover(paths)))
    sources = [item for item in found if isinstance(item, Source)]
    if progress is not None:
        progress.files(len(sources))
    for item in found:
        if isinstance(item, Rejection):
            reject(item)

    producer = (
        None
        if dry_run
        else DocumentProducer(bootstrap_servers, topic=topic, max_body_bytes=max_body_bytes)
    )
    try:
        if producer is not None:
            await producer.start()
        for source in sources:
            if progress is not None:
                progress.file_started(source.display)
            records = read_source(source, max_body_bytes=max_body_bytes)
            while batch := await asyncio.to_thread(_take, records, batch_size):
                accepted = [r for r in batch if isinstance(r, Accepted)]
                for record in batch:
                    if isinstance(record, Rejection):
                        reject(record)
                if producer is None:
                    summary.produced += len(accepted)
                    if progress is not None:
                        for _ in accepted:
                            progress.record(produced=True)
                    continue
                results = await producer.send_batch(
                    [r.document for r in accepted], return_exceptions=True
                )
                for record, result in zip(accepted, results, strict=True):
                    if isinstance(result, TickerwireError):
                        # The SDK already counted it in PRODUCE_REJECTED.
                        reject(Rejection.from_error(record.location, result), count=False)
                    elif isinstance(result, Exception):
                        reject(
                            Rejection(record.location, str(result), type(result).__name__),
                        )
                    else:
                        summary.produced += 1
                        if progress is not None:
                            progress.record(produced=True)
            if progress is not None:
                progress.file_done(source.display)
    finally:
        if producer is not None:
            await producer.close()
    _log.debug("produce_done", produced=summary.produced, rejected=summary.rejected, topic=topic)
    return summary
