"""The ask use case: retrieve through search, weigh the evidence, answer with citations.

Events come out in the order of the ``/v1/ask`` stream: one ``meta``, ``token`` deltas, one
``final`` (the full non-streaming response). A failing answer model raises after ``meta``; the
HTTP layer turns that into an ``error`` event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tickerwire.core.metrics import (
    ASK_CITATIONS_DROPPED,
    ASK_EVIDENCE,
    ASK_REFUSED,
    QUERY_SECONDS,
    QUERY_TOP_SCORE,
)
from tickerwire.core.ports import (
    AnswerModel,
    Passage,
    ScoredHit,
    SearchFilters,
    SearchMode,
    Usage,
    Watermark,
)
from tickerwire.pipeline.chunking import title_header
from tickerwire.query.answer_text import (
    REFUSAL,
    CitationStream,
    check_citations,
    compose_offline,
    evidence_score,
    score_units,
    split_units,
)
from tickerwire.query.search import SearchService
from tickerwire.query.views import watermark_json

#: Characters of a cited chunk shown as its snippet.
SNIPPET_CHARS = 240

EventName = Literal["meta", "token", "final"]


@dataclass(frozen=True, slots=True)
class AskEvent:
    """One event of an answer: ``meta``, ``token`` or ``final``, with its JSON data."""

    event: EventName
    data: dict[str, Any]
    #: The final event's retrieved hits and the passages the model read (for the query log;
    #: not part of the response).
    hits: tuple[ScoredHit, ...] = ()
    passages: tuple[Passage, ...] = ()


class OfflineAnswerer:
    """The default answer model: quotes the retrieved sentences and table rows that best answer
    the question, each followed by its citation. No network; numbers stay as written."""

    @property
    def name(self) -> str:
        """``offline``."""
        return "offline"

    async def answer(
        self, question: str, passages: Sequence[Passage]
    ) -> AsyncIterator[str | Usage]:
        """The composed answer, streamed word by word."""
        text = compose_offline(passages)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else f" {word}"

    async def aclose(self) -> None:
        """Nothing to release."""


def _cosines(query: Sequence[float], vectors: Sequence[Sequence[float]]) -> list[float]:
    if not vectors:
        return []
    matrix = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
    norms[norms == 0] = 1.0
    result: list[float] = ((matrix @ q) / norms).tolist()
    return result


def citation_json(passage: Passage, hit: ScoredHit) -> dict[str, Any]:
    """A citation as the API returns it."""
    text = passage.text
    snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"
    return {
        "n": passage.n,
        "doc_id": passage.doc_id,
        "chunk_id": passage.chunk_id,
        "title": passage.title,
        "url": hit.payload.get("url"),
        "published_at": passage.published_at,
        "snippet": snippet,
    }


class AskService:
    """Answers questions from the index, citing chunks, refusing on weak evidence."""

    def __init__(
        self,
        *,
        search: SearchService,
        model: AnswerModel,
        min_evidence: float,
        passages: int = 5,
    ) -> None:
        """``passages``: how many of the top hits the answer model reads (and may cite). Units
        are scored with the search's own embedder and sparse tokenizer."""
        self._search = search
        self._model = model
        self._min_evidence = min_evidence
        self._passages = passages

    @property
    def model(self) -> AnswerModel:
        """The answer model in use."""
        return self._model

    async def passages(self, question: str, hits: Sequence[ScoredHit]) -> list[Passage]:
        """The top hits as numbered passages, their units scored against ``question``."""
        chosen = list(hits[: self._passages])
        unit_texts = [split_units(str(h.payload.get("text") or "")) for h in chosen]
        # A sentence out of its document loses its subject ("Revenue ... was $68.4 billion" of
        # whom?); the chunks' own title header puts it back, as it does for the chunk vectors.
        flat = [
            title_header(str(h.payload.get("title") or "")) + u
            for h, units in zip(chosen, unit_texts, strict=True)
            for u in units
        ]
        if flat:
            query_vec = await self._search.embedder.embed_query(question)
            cosines = _cosines(query_vec, await self._search.embedder.embed_documents(flat))
        else:
            cosines = []
        out: list[Passage] = []
        offset = 0
        for n, (hit, units) in enumerate(zip(chosen, unit_texts, strict=True), start=1):
            scored = score_units(
                units, cosines[offset : offset + len(units)], question, self._search.sparse.tokenize
            )
            offset += len(units)
            out.append(
                Passage(
                    n=n,
                    doc_id=str(hit.payload.get("doc_id") or ""),
                    chunk_id=str(hit.payload.get("chunk_id") or hit.id),
                    title=str(hit.payload.get("title") or ""),
                    published_at=hit.payload.get("published_at"),
                    text=str(hit.payload.get("text") or ""),
                    units=scored,
                )
            )
        return out

    async def ask(
        self,
        question: str,
        *,
        k: int = 5,
        mode: SearchMode = "hybrid",
        filters: SearchFilters | None = None,
        understand: bool = True,
    ) -> AsyncIterator[AskEvent]:
        """Retrieve the top ``k`` chunks and answer from the best of them, as events."""
        started = time.perf_counter()
        query_id = uuid.uuid4().hex
        result = await self._search.search(
            question, k=k, mode=mode, filters=filters, understand=understand
        )
        hits = result.hits
        if hits:
            QUERY_TOP_SCORE.labels(endpoint="/v1/ask", mode=mode).observe(hits[0].score)
        passages = await self.passages(question, hits)
        retrieved = time.perf_counter()
        watermark = watermark_json(result.watermark)
        yield AskEvent(
            "meta",
            {"query_id": query_id, "understood": result.understood, "watermark": watermark},
        )
        evidence = evidence_score(passages)
        if evidence is not None:
            ASK_EVIDENCE.observe(evidence)
        refusal: str | None = None
        if not hits:
            refusal = "no_hits"
        elif evidence is None or evidence < self._min_evidence:
            refusal = "weak_evidence"

        usage: Usage | None = None
        checked = None
        if refusal is None:
            stream = CitationStream(len(passages))
            async for item in self._model.answer(question, passages):
                if isinstance(item, Usage):
                    usage = item
                    continue
                shown = stream.feed(item)
                if shown:
                    yield AskEvent("token", {"text": shown})
            rest = stream.finish()
            if rest:
                yield AskEvent("token", {"text": rest})
            checked = check_citations(stream.raw, len(passages))
            if checked.dropped:
                ASK_CITATIONS_DROPPED.inc(checked.dropped)
            if not checked.cited:
                refusal = "no_valid_citation"
        else:
            yield AskEvent("token", {"text": REFUSAL})
        answered = time.perf_counter()
        if refusal is not None:
            ASK_REFUSED.labels(reason=refusal).inc()
        QUERY_SECONDS.labels(endpoint="ask", phase="retrieve").observe(retrieved - started)
        QUERY_SECONDS.labels(endpoint="ask", phase="answer").observe(answered - retrieved)
        by_n = {p.n: (p, h) for p, h in zip(passages, hits, strict=False)}
        final: dict[str, Any] = {
            "query_id": query_id,
            "answer": REFUSAL if refusal is not None or checked is None else checked.text,
            "grounded": refusal is None,
            "citations": []
            if refusal is not None or checked is None
            else [citation_json(*by_n[n]) for n in checked.cited],
            "citations_dropped": checked.dropped if checked is not None else 0,
            "understood": result.understood,
            "watermark": watermark,
            "timings": {
                "retrieve_ms": round((retrieved - started) * 1000, 3),
                "answer_ms": round((answered - retrieved) * 1000, 3),
                "total_ms": round((answered - started) * 1000, 3),
            },
            "evidence": evidence,
            "refusal_reason": refusal,
            "retrieved": [p.chunk_id for p in passages],
            "model": self._model.name,
        }
        if usage is not None:
            final["usage"] = {
                "model": usage.model,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": usage.cost_usd,
            }
        yield AskEvent("final", final, hits=tuple(hits), passages=tuple(passages))


async def final_response(events: AsyncIterator[AskEvent]) -> dict[str, Any]:
    """The non-streaming /v1/ask response: the data of the ``final`` event of ``events``."""
    async for event in events:
        if event.event == "final":
            return event.data
    raise RuntimeError("the answer ended without a final event")


__all__ = ["AskEvent", "AskService", "OfflineAnswerer", "Watermark", "final_response"]
