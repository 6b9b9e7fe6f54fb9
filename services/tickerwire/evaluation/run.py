"""One evaluation run: a private broker, a worker ingesting the corpus, then the questions."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tickerwire.adapters.kafka_options import KafkaConnection, describe
from tickerwire.core.errors import ConfigError
from tickerwire.core.settings import Settings
from tickerwire.core.waiting import wait_for
from tickerwire.evaluation.answers import (
    DEFAULT_ANSWER_QUESTIONS,
    answer_all,
    delete_documents,
    evidence_documents,
    load_answers,
    sample_questions,
    scores,
)
from tickerwire.evaluation.dataset import Question, corpus_documents, load_dataset
from tickerwire.evaluation.metrics import MODES, dedupe, mean_scores, score
from tickerwire.evaluation.report import EvalResult, print_table, progress_bar, write_report
from tickerwire.evaluation.worker import WorkerProcess

_PRODUCE_SLICE = 500


async def _produce(
    bootstrap: str, docs: list[dict[str, Any]], advance: Callable[[int], None]
) -> None:
    from tickerwire.produce.producer import DocumentProducer

    async with DocumentProducer(bootstrap) as producer:
        for start in range(0, len(docs), _PRODUCE_SLICE):
            batch = docs[start : start + _PRODUCE_SLICE]
            await producer.send_batch(batch)
            advance(len(batch))


def run_eval(
    settings: Settings,
    dataset_dir: Path,
    output: Path,
    *,
    bootstrap: str | None = None,
    titles: bool = False,
    limit: int | None = None,
    console: Console | None = None,
    ingest_timeout_s: float = 3600.0,
    work_dir: Path | None = None,
    answers: bool = False,
    answer_questions: int = DEFAULT_ANSWER_QUESTIONS,
) -> EvalResult:
    """Ingest the corpus through a real worker into a fresh collection, then score every mode.

    Without ``bootstrap`` a private Kafka broker is started (and stopped) in a temporary folder,
    so nothing else on the topics mixes into the collection. The collection lives in a temporary
    folder that is removed afterwards, unless ``work_dir`` names a folder to keep it in
    (``<work_dir>/data``, collection name in ``eval.json`` under ``_run``). A corpus row the
    producer would refuse is a ConfigError before anything starts.

    ``answers`` also asks up to ``answer_questions`` questions as /v1/ask does and reports answer
    recall, citation precision and refusal rates (:mod:`.answers`) under ``answers`` in the
    result info; the evidence-absent pass deletes the relevant documents from the collection.
    """
    from tickerwire.adapters.kafka_admin import ensure_topics, load_topic_specs
    from tickerwire.localbroker import LocalBroker, free_loopback_ports

    console = console or Console(stderr=True)
    data = load_dataset(dataset_dir, limit=limit)
    docs = corpus_documents(data.corpus, titles=titles, max_body_bytes=settings.max_body_bytes)
    output.mkdir(parents=True, exist_ok=True)
    keep = work_dir is not None
    work = work_dir if work_dir is not None else Path(tempfile.mkdtemp(prefix="tickerwire-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    broker: LocalBroker | None = None
    worker: WorkerProcess | None = None
    info: dict[str, Any] = {
        "documents": len(docs),
        "questions": len(data.questions),
        "titles": titles,
        "embedder": settings.embedder,
        "backend": "server" if settings.qdrant_url else "edge",
    }
    try:
        if bootstrap is None:
            ports = free_loopback_ports(2)
            broker = LocalBroker(
                ports[0],
                work / "kafka",
                settings.kafka_dir / "libs",
                settings.kafka_heap,
                controller_port=ports[1],
            )
            console.print("starting a private Kafka broker…")
            broker.up(timeout=180)
            bootstrap = broker.bootstrap
        asyncio.run(ensure_topics(bootstrap, load_topic_specs()))
        collection = f"eval_{uuid.uuid4().hex[:8]}"
        info["collection"] = collection
        worker = WorkerProcess(
            bootstrap=bootstrap,
            data_dir=work / "data",
            app_id=collection,
            http_port=free_loopback_ports(1)[0],
            env={"TICKERWIRE_COLLECTION": collection},
            log_dir=output,
            log_name="eval-worker",
        )
        console.print("starting the pipeline worker…")
        worker.start()
        started = time.perf_counter()
        with progress_bar(console) as progress:
            sent = progress.add_task("produce", total=len(docs))
            done = progress.add_task("index", total=len(docs))
            asyncio.run(_produce(bootstrap, docs, lambda n: progress.advance(sent, n)))
            running, dead = worker, 0.0

            def ingested() -> bool:
                nonlocal dead
                applied = running.metric("tickerwire_index_commits_applied_total")
                dead = running.metric("tickerwire_dlq_records_total")
                progress.update(done, completed=min(applied + dead, len(docs)))
                return applied + dead >= len(docs)

            if not wait_for(ingested, ingest_timeout_s, 1.0):
                raise ConfigError(f"ingest did not finish in {ingest_timeout_s:.0f}s")
        info["ingest_seconds"] = round(time.perf_counter() - started, 1)
        info["dead_lettered"] = int(dead)
        info["points"] = int(worker.client.get("/v1/status").json()["points"])
        worker.stop()
        worker.close()
        worker = None
        query_settings = settings.model_copy(
            update={"data_dir": work / "data", "collection": collection}
        )
        modes = asyncio.run(ask_all(query_settings, data.questions, console, bootstrap))
        if answers:
            asked = sample_questions(data.questions, answer_questions)
            info["answers"] = asyncio.run(
                _answer_all(
                    query_settings,
                    asked,
                    load_answers(dataset_dir),
                    evidence_documents(asked, data.corpus),
                    console,
                    bootstrap,
                )
            )
        result = EvalResult(modes=modes, info=info)
        result.files = write_report(result, output)
        print_table(result, console)
        return result
    finally:
        if worker is not None:
            if worker.proc is not None:
                worker.stop()
            worker.close()
        if broker is not None:
            broker.down()
        if keep:
            shutil.rmtree(work / "kafka", ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


#: How long the questions wait for the entity registry to read the entities topic.
ENTITIES_CATCH_UP_S = 120.0


async def ask_all(
    settings: Settings,
    questions: Sequence[Question],
    console: Console,
    bootstrap: KafkaConnection,
    edge_path: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Scores per mode (query understanding on, as served) and per ``<mode> (understand off)``.

    The entity registry is read from the run's entities topic first, as the query API does.
    ``edge_path``: score the Edge index there instead of the data dir's.
    """
    from tickerwire.runtime import open_resources

    res = await open_resources(settings, with_index=True, edge_path=edge_path)
    try:
        feed = await res.follow_entities(bootstrap)
        try:
            async with asyncio.timeout(ENTITIES_CATCH_UP_S):
                await feed.caught_up.wait()
        except TimeoutError:
            raise ConfigError(
                f"the entity registry did not read the entities topic on {describe(bootstrap)} "
                f"in {ENTITIES_CATCH_UP_S:.0f}s"
            ) from None
        search = res.search_service()
        out: dict[str, dict[str, float]] = {}
        with progress_bar(console) as progress:
            for understand in (True, False):
                for mode in MODES:
                    name = mode if understand else f"{mode} (understand off)"
                    task = progress.add_task(name, total=len(questions))
                    rows = []
                    for q in questions:
                        found = await search.search(q.text, k=30, mode=mode, understand=understand)
                        ranked = dedupe(str(h.payload.get("doc_id")) for h in found.hits)
                        rows.append(score(ranked, q.relevant))
                        progress.advance(task)
                    out[name] = mean_scores(rows)
        return out
    finally:
        await res.aclose()


async def _answer_all(
    settings: Settings,
    questions: Sequence[Question],
    gold: dict[str, Any],
    evidence: set[str],
    console: Console,
    bootstrap: str,
) -> dict[str, Any]:
    """Answer scores with the evidence present, then with the questions' evidence deleted."""
    from tickerwire.runtime import open_answer_model, open_resources

    res = await open_resources(settings, with_index=True)
    model = open_answer_model(settings)
    try:
        assert res.index is not None
        feed = await res.follow_entities(bootstrap)
        async with asyncio.timeout(ENTITIES_CATCH_UP_S):
            await feed.caught_up.wait()
        ask = res.ask_service(model)
        with progress_bar(console) as progress:
            task = progress.add_task("answers (evidence present)", total=len(questions))
            present = await answer_all(ask, questions, gold, advance=lambda: progress.advance(task))
            await delete_documents(res.index, evidence)
            task = progress.add_task("answers (evidence absent)", total=len(questions))
            absent = await answer_all(ask, questions, gold, advance=lambda: progress.advance(task))
        out = scores(present, absent)
        out["answer_model"] = model.name
        return out
    finally:
        await model.aclose()
        await res.aclose()
