"""The preprocess stage: validate, clean, redact, chunk and diff raw documents.

For each raw record it sends only new or changed chunks to the chunks topic, then a commit that
lists the document's current chunk ids, and only after Kafka has acknowledged them does it store
the document's new state. A record it cannot use goes to the DLQ with the reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import structlog

from tickerwire.core.errors import PermanentError, TooLargeError, ValidationError
from tickerwire.core.metrics import (
    CHUNKS_EMITTED,
    CHUNKS_REUSED,
    DOCUMENTS,
    ENTITIES_EMITTED,
    METADATA_ONLY_UPDATES,
    PII_REDACTED,
    STAGE_RECORDS,
    STAGE_SECONDS,
)
from tickerwire.core.ports import Splitter
from tickerwire.core.records import (
    ChunkRecord,
    CommitRecord,
    DocFacts,
    DocumentFields,
    EntityRecord,
    RawDocument,
    parse_raw_document,
)
from tickerwire.pipeline.chunking import Chunk, chunk_document, metadata_header, sha256_hex
from tickerwire.pipeline.clean import clean_document
from tickerwire.pipeline.diff import (
    DocState,
    Outcome,
    Plan,
    live_state,
    plan_delete,
    plan_upsert,
)
from tickerwire.pipeline.entities import ENTITIES_TOPIC, observations
from tickerwire.pipeline.redact import redact
from tickerwire.stages.base import CHUNKS_TOPIC, DeadLetters, InMsg, OutMsg, Sender

log = structlog.get_logger("tickerwire.stages.preprocess")

#: Entity keys remembered as sent before the memory starts over.
ENTITY_KEYS_REMEMBERED = 100_000
#: What a chunk's document fields take from the raw document as they are (title and facts
#: are derived).
_DOCUMENT_FROM_RAW = set(DocumentFields.model_fields) - {"title", "facts"}

#: The state table: doc_id (bytes) → DocState as JSON bytes. A faust Table in production.
StateTable = MutableMapping[bytes, Any]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A valid upsert, cleaned and chunked (computed off the event loop)."""

    doc: RawDocument
    chunks: list[Chunk]
    content_hash: str
    meta_hash: str
    pii: dict[str, int]
    facts: DocFacts


@dataclass
class ChunkerConfig:
    """How documents are chunked: the embedder's tokenizer and the token budget."""

    make_splitter: Callable[[int, int], Splitter]
    count_tokens: Callable[[str], int]
    max_tokens: int = 256
    overlap: int = 32
    #: "title": the title line before each chunk; "metadata": pipeline.chunking.metadata_header.
    header: Literal["title", "metadata"] = "title"
    #: Name the filing item each chunk is in, in its header.
    sections: bool = False


def parse_raw(msg: InMsg, max_body_bytes: int) -> RawDocument:
    """The raw document in ``msg``; PermanentError subclasses say exactly what is wrong."""
    doc = parse_raw_document(msg.value)
    if msg.key is not None and msg.key != doc.doc_id.encode("utf-8"):
        raise ValidationError(
            f"record key {msg.doc_id!r} differs from doc_id {doc.doc_id!r}; "
            "every record must be keyed by its doc_id"
        )
    if doc.body is not None and len(doc.body.encode("utf-8")) > max_body_bytes:
        raise TooLargeError(
            f"body is {len(doc.body.encode('utf-8'))} bytes, over the limit of {max_body_bytes}"
        )
    return doc


def prepare(doc: RawDocument, chunker: ChunkerConfig) -> Prepared:
    """Clean, redact and chunk an upsert. CPU work: call it off the event loop."""
    assert doc.body is not None and doc.content_type is not None  # an upsert has them
    text = clean_document(doc.body, doc.content_type)
    red = redact(text)
    title = redact(doc.title or "").text
    header = (
        metadata_header(
            title=title, doc_type=doc.doc_type, tickers=doc.tickers, metadata=doc.metadata
        )
        if chunker.header == "metadata"
        else None
    )
    chunks = chunk_document(
        doc_id=doc.doc_id,
        title=title,
        text=red.text,
        max_tokens=chunker.max_tokens,
        overlap=chunker.overlap,
        make_splitter=chunker.make_splitter,
        count_tokens=chunker.count_tokens,
        header=header,
        sections=chunker.sections,
    )
    meta: dict[str, Any] = {
        "url": doc.url,
        "source": doc.source,
        "doc_type": doc.doc_type,
        "tickers": list(doc.tickers),
        "published_at": doc.published_at.isoformat() if doc.published_at else None,
        "language": doc.language,
    }
    facts = DocFacts.of(doc)
    if not facts.is_empty():  # only then, so documents without facts keep their hash
        meta["facts"] = facts.to_json_dict()
    meta_hash = sha256_hex(json.dumps(meta, sort_keys=True))
    content: dict[str, Any] = {"title": title, "text": red.text, "meta": meta_hash}
    if header is not None or chunker.sections:
        # The header comes from metadata the meta hash does not cover: a change must re-chunk.
        content["header"] = [header, chunker.sections]
    content_hash = sha256_hex(json.dumps(content))
    return Prepared(
        doc=doc,
        chunks=chunks,
        content_hash=content_hash,
        meta_hash=meta_hash,
        pii=red.counts,
        facts=facts,
    )


class PreprocessStage:
    """Turns raw records into chunk and commit records, keeping per-document state."""

    stage = "preprocess"

    def __init__(
        self,
        *,
        sender: Sender,
        state: StateTable,
        chunker: ChunkerConfig,
        max_body_bytes: int,
        out_topic: str = CHUNKS_TOPIC,
        threads: int = 2,
        entities_topic: str | None = ENTITIES_TOPIC,
        tombstone_retention_s: float = 7 * 86_400.0,
    ) -> None:
        """``threads``: documents of a batch cleaned and chunked at once (threads).

        ``tombstone_retention_s``: how long a deleted document's version still beats a late,
        older upsert (measured in the records' Kafka timestamps).

        ``entities_topic``: where the name -> ticker observations of new and changed documents go
        (None: nowhere).
        """
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self._threads = threads
        self._sender = sender
        self._state = state
        self._chunker = chunker
        self._max_body = max_body_bytes
        self._out_topic = out_topic
        self._dead = DeadLetters("preprocess")
        self._entities_topic = entities_topic
        self._tombstone_retention_s = tombstone_retention_s
        #: Entity keys this process already sent: the topic is compacted, so a repeat is only
        #: waste, and forgetting (when the set fills) costs a duplicate, never a loss.
        self._entities_sent: set[str] = set()

    async def handle(self, batch: Sequence[InMsg]) -> None:
        """Process a batch in order; returns once outputs are durable and state is stored."""
        with STAGE_SECONDS.labels(stage=self.stage).time():
            out: list[OutMsg] = []
            parsed: list[tuple[InMsg, RawDocument | None]] = []
            for msg in batch:
                try:
                    parsed.append((msg, parse_raw(msg, self._max_body)))
                except PermanentError as exc:
                    out.append(self._dead.message(msg, exc))
                    parsed.append((msg, None))
            upserts = [d for _, d in parsed if d is not None and d.op == "upsert"]
            # The splitter and tokenizer release the GIL: slices of the batch run in parallel.
            slices = [upserts[k :: self._threads] for k in range(min(self._threads, len(upserts)))]
            prepared: dict[int, Prepared | BaseException] = {}
            for part in await asyncio.gather(
                *(asyncio.to_thread(self._prepare_all, s) for s in slices)
            ):
                prepared.update(part)
            overlay: dict[bytes, DocState | None] = {}
            for msg, doc in parsed:
                if doc is None:
                    continue
                with structlog.contextvars.bound_contextvars(**msg.log_context()):
                    result = prepared.get(id(doc))
                    if isinstance(result, BaseException):
                        out.append(self._dead.message(msg, result))
                        continue
                    out.extend(self._plan(msg, doc, result, overlay))
            if out:
                await self._sender.send_all(out)
            # Outputs are durable: now the state may move forward.
            for key, state in overlay.items():
                if state is None:
                    self._state.pop(key, None)
                else:
                    self._state[key] = json.dumps(state.to_json()).encode("utf-8")

    def _prepare_all(self, docs: list[RawDocument]) -> dict[int, Prepared | BaseException]:
        results: dict[int, Prepared | BaseException] = {}
        for doc in docs:
            try:
                results[id(doc)] = prepare(doc, self._chunker)
            except Exception as exc:  # noqa: BLE001 - one bad document must not stop the batch
                results[id(doc)] = PermanentError(f"cannot clean or chunk: {exc!r}")
        return results

    def _current(self, key: bytes, overlay: dict[bytes, DocState | None]) -> DocState | None:
        if key in overlay:
            return overlay[key]
        raw = self._state.get(key)
        return DocState.from_json(json.loads(raw)) if raw else None

    def _plan(
        self,
        msg: InMsg,
        doc: RawDocument,
        prepared: Prepared | None,
        overlay: dict[bytes, DocState | None],
    ) -> list[OutMsg]:
        key = doc.doc_id.encode("utf-8")
        now = msg.timestamp_ms / 1000 if msg.timestamp_ms else time.time()
        prev = live_state(
            self._current(key, overlay), now=now, tombstone_retention_s=self._tombstone_retention_s
        )
        plan: Plan
        if doc.op == "delete":
            plan = plan_delete(prev, version=doc.version, now=now)
        else:
            assert prepared is not None
            plan = plan_upsert(
                prev,
                version=doc.version,
                content_hash=prepared.content_hash,
                meta_hash=prepared.meta_hash,
                chunks=prepared.chunks,
            )
        DOCUMENTS.labels(result=plan.outcome.value).inc()
        if plan.outcome in (Outcome.STALE, Outcome.UNCHANGED):
            STAGE_RECORDS.labels(stage=self.stage, outcome=plan.outcome.value).inc()
            log.info(
                "document_skipped",
                outcome=plan.outcome.value,
                version=doc.version,
                stored_version=prev.version if prev else None,
            )
            return []
        STAGE_RECORDS.labels(stage=self.stage, outcome="ok").inc()
        if prepared is not None:
            for kind, n in prepared.pii.items():
                PII_REDACTED.labels(kind=kind).inc(n)
        produced_at = (
            datetime.fromtimestamp(msg.timestamp_ms / 1000, UTC)
            if msg.timestamp_ms
            else datetime.now(UTC)
        )
        document = self._document(doc, prepared) if doc.op == "upsert" else None
        out = [
            OutMsg(
                self._out_topic, key, self._chunk_record(doc, c, produced_at, document).to_bytes()
            )
            for c in plan.emit
            if document is not None
        ]
        CHUNKS_EMITTED.inc(len(plan.emit))
        CHUNKS_REUSED.inc(plan.reused)
        if prev is not None and plan.reused_ids and set(plan.reused_ids) == set(prev.chunk_ids):
            METADATA_ONLY_UPDATES.inc()  # the same chunks: nothing to embed, payloads follow
        commit = CommitRecord(
            doc_id=doc.doc_id,
            version=doc.version,
            op=doc.op,
            chunk_ids=tuple(UUID(c) for c in plan.commit_ids or ()),
            content_hash=prepared.content_hash if prepared else None,
            produced_at=produced_at,
            published_at=doc.published_at,
            reused=tuple(UUID(c) for c in plan.reused_ids),
            document=document if plan.reused_ids else None,
        )
        out.append(OutMsg(self._out_topic, key, commit.to_bytes()))
        if doc.op == "upsert":
            out.extend(self._entity_messages(doc, produced_at))
        overlay[key] = plan.new_state
        log.info(
            "document_planned",
            outcome=plan.outcome.value,
            version=doc.version,
            chunks=len(plan.commit_ids or ()),
            emitted=len(plan.emit),
        )
        return out

    @staticmethod
    def _document(doc: RawDocument, prepared: Prepared | None) -> DocumentFields:
        assert doc.published_at is not None and doc.source and doc.doc_type
        facts = None if prepared is None or prepared.facts.is_empty() else prepared.facts
        same = {name: getattr(doc, name) for name in _DOCUMENT_FROM_RAW}
        return DocumentFields(**same, title=doc.title or "", facts=facts)

    def _entity_messages(self, doc: RawDocument, observed_at: datetime) -> list[OutMsg]:
        if self._entities_topic is None:
            return []
        if len(self._entities_sent) >= ENTITY_KEYS_REMEMBERED:
            self._entities_sent.clear()
        out: list[OutMsg] = []
        for obs in observations(
            tickers=doc.tickers, title=doc.title, body=doc.body, metadata=doc.metadata
        ):
            if obs.key in self._entities_sent:
                continue
            self._entities_sent.add(obs.key)
            record = EntityRecord(
                ticker=obs.ticker, name=obs.name, doc_id=doc.doc_id, observed_at=observed_at
            )
            out.append(OutMsg(self._entities_topic, obs.key.encode("utf-8"), record.to_bytes()))
        ENTITIES_EMITTED.inc(len(out))
        return out

    @staticmethod
    def _chunk_record(
        doc: RawDocument, chunk: Chunk, produced_at: datetime, document: DocumentFields
    ) -> ChunkRecord:
        # Every Chunk field goes into the record: chunk_id as a UUID, index as chunk_index.
        fields = asdict(chunk) | dict(document)
        fields["chunk_id"] = UUID(chunk.chunk_id)
        fields["chunk_index"] = fields.pop("index")
        if fields["facts"] is None:
            del fields["facts"]
        return ChunkRecord(
            doc_id=doc.doc_id, version=doc.version, produced_at=produced_at, **fields
        )
