"""Every Prometheus metric of tickerwire, defined once, here.

Names follow Prometheus conventions: ``tickerwire_<part>_<what>_total`` for counters and
``_seconds`` histograms for durations. Import the metric objects; never define one elsewhere.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# --- producer ---------------------------------------------------------------------------------
PRODUCED = Counter(
    "tickerwire_producer_records_total",
    "Records the producer SDK handed to Kafka and Kafka acknowledged.",
    ["topic"],
)
PRODUCE_REJECTED = Counter(
    "tickerwire_producer_rejected_total",
    "Input records the producer rejected before Kafka, by reason class.",
    ["error_class"],
)

# --- stages (shared) --------------------------------------------------------------------------
STAGE_RECORDS = Counter(
    "tickerwire_stage_records_total",
    "Records a stage consumed, by outcome (ok, noop, stale, dlq).",
    ["stage", "outcome"],
)
STAGE_SECONDS = Histogram(
    "tickerwire_stage_process_seconds",
    "Time a stage spent on one batch of records.",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
STAGE_RETRIES = Counter(
    "tickerwire_stage_retries_total",
    "Transient failures a stage retried, by error class.",
    ["stage", "error_class"],
)
DLQ_RECORDS = Counter(
    "tickerwire_dlq_records_total",
    "Records sent to the dead-letter topic, by stage and error class.",
    ["stage", "error_class"],
)
DLQ_REPLAYED = Counter(
    "tickerwire_dlq_replayed_total",
    "Dead-lettered records re-produced to their original topic.",
    ["topic"],
)
STAGE_BUFFER = Gauge(
    "tickerwire_stage_buffer_depth",
    "Records held in a stage's in-memory batch buffer (back-pressure signal).",
    ["stage"],
)
OFFSET_GAPS = Counter(
    "tickerwire_stage_offset_gaps_total",
    "Jumps in a partition's offsets seen by a stage: 'empty' when no record exists in between "
    "(compaction, retention), 'undelivered' when the consumer skipped records (they are re-read).",
    ["stage", "kind"],
)
REDELIVERED = Counter(
    "tickerwire_stage_redelivered_total",
    "Records delivered again after they were already processed (after a rebalance or re-read), "
    "and skipped.",
    ["stage"],
)
CONSUMER_LAG = Gauge(
    "tickerwire_consumer_lag_records",
    "Records between a consumer group's committed offset and the partition end, computed "
    "periodically by every worker for its own group (several replicas report the same series: "
    "aggregate with max by group, topic, partition).",
    ["group", "topic", "partition"],
)

# --- preprocess -------------------------------------------------------------------------------
PII_REDACTED = Counter(
    "tickerwire_preprocess_pii_redacted_total",
    "PII spans replaced by typed placeholders, by kind.",
    ["kind"],
)
CHUNKS_EMITTED = Counter(
    "tickerwire_preprocess_chunks_emitted_total",
    "New or changed chunks sent on to embedding.",
)
CHUNKS_REUSED = Counter(
    "tickerwire_preprocess_chunks_reused_total",
    "Chunks whose text was unchanged from the previous version and were not re-embedded.",
)
DOCUMENTS = Counter(
    "tickerwire_preprocess_documents_total",
    "Documents seen by preprocess, by result (new, updated, unchanged, stale, deleted).",
    ["result"],
)
ENTITIES_EMITTED = Counter(
    "tickerwire_preprocess_entities_emitted_total",
    "Entity observations (name -> ticker) sent to the entities topic.",
)

# --- embed ------------------------------------------------------------------------------------
EMBED_CALLS = Counter(
    "tickerwire_embed_calls_total",
    "Calls to the embedder (one per batch).",
    ["embedder"],
)
EMBED_TEXTS = Counter(
    "tickerwire_embed_texts_total",
    "Texts embedded.",
    ["embedder"],
)
EMBED_SECONDS = Histogram(
    "tickerwire_embed_batch_seconds",
    "Time one embedding batch took.",
    ["embedder"],
    buckets=_LATENCY_BUCKETS,
)
EMBED_BATCH_SIZE = Histogram(
    "tickerwire_embed_batch_size",
    "Texts per embedding batch.",
    ["embedder"],
    buckets=_BATCH_BUCKETS,
)


def observe_embed_call(embedder: str, texts: int, seconds: float) -> None:
    """Record one embedding call of ``texts`` passages that took ``seconds``."""
    EMBED_CALLS.labels(embedder=embedder).inc()
    EMBED_TEXTS.labels(embedder=embedder).inc(texts)
    EMBED_BATCH_SIZE.labels(embedder=embedder).observe(texts)
    EMBED_SECONDS.labels(embedder=embedder).observe(seconds)


OPENAI_REQUESTS = Counter(
    "tickerwire_openai_requests_total",
    "Requests sent to the OpenAI-compatible API, by endpoint and status code.",
    ["endpoint", "status"],
)
OPENAI_TOKENS = Counter(
    "tickerwire_openai_tokens_total",
    "Tokens sent to the OpenAI-compatible API, by model.",
    ["model"],
)
OPENAI_COST = Counter(
    "tickerwire_openai_cost_usd_total",
    "Estimated spend on the OpenAI-compatible API in US dollars, from the price table.",
    ["model"],
)

# --- index ------------------------------------------------------------------------------------
INDEX_UPSERTS = Counter(
    "tickerwire_index_points_upserted_total",
    "Points written to the vector index.",
    ["backend"],
)
INDEX_DELETES = Counter(
    "tickerwire_index_points_deleted_total",
    "Stale points removed from the vector index when a commit was applied.",
    ["backend"],
)
METADATA_ONLY_UPDATES = Counter(
    "tickerwire_metadata_only_updates_total",
    "Document versions that changed only metadata: payloads updated in place, nothing embedded.",
)
INDEX_WRITES = Counter(
    "tickerwire_index_writes_total",
    "Write calls (upsert, delete or payload-refresh batches) made to the vector index.",
    ["backend", "op"],
)
INDEX_WRITE_SECONDS = Histogram(
    "tickerwire_index_write_seconds",
    "Time one index write call took.",
    ["backend", "op"],
    buckets=_LATENCY_BUCKETS,
)
INDEX_COMMITS = Counter(
    "tickerwire_index_commits_applied_total",
    "Document commit records applied by the index stage.",
    ["backend"],
)
INDEX_OPTIMIZE_SECONDS = Histogram(
    "tickerwire_index_optimize_seconds",
    "Time an index optimization (HNSW build, segment merge) took, off the event loop.",
    ["backend"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
INDEX_POINTS = Gauge(
    "tickerwire_index_points",
    "Points in the vector index.",
    ["backend"],
)
FRESHNESS_SECONDS = Histogram(
    "tickerwire_freshness_seconds",
    "Time from a document's produce timestamp to its commit being applied to the index.",
    buckets=_FRESHNESS_BUCKETS,
)
FRESHNESS_PUBLISHED_SECONDS = Histogram(
    "tickerwire_freshness_published_seconds",
    "Time from a document's published-at to its commit being applied to the index (searchable); "
    "includes the time before it was produced.",
    buckets=(*_FRESHNESS_BUCKETS, 900.0, 3600.0, 21600.0, 86400.0, 604800.0),
)

# --- query ------------------------------------------------------------------------------------
QUERY_REQUESTS = Counter(
    "tickerwire_query_requests_total",
    "Query API requests, by endpoint and HTTP status.",
    ["endpoint", "status"],
)
QUERY_SECONDS = Histogram(
    "tickerwire_query_seconds",
    "Query latency by endpoint and phase (embed, search, answer, total).",
    ["endpoint", "phase"],
    buckets=_LATENCY_BUCKETS,
)
QUERY_REQUEST_SECONDS = Histogram(
    "tickerwire_query_request_seconds",
    "Whole-request latency of the query API, by route template.",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)
QUERY_TOP_SCORE = Histogram(
    "tickerwire_query_top_score",
    "Score of the top hit of a search or ask (the fused score for hybrid, cosine for dense, "
    "BM25 for sparse), by endpoint and mode.",
    ["endpoint", "mode"],
    buckets=(0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0, 10.0, 20.0),
)
QUERY_RATE_LIMITED = Counter(
    "tickerwire_query_rate_limited_total",
    "Query API requests refused with 429 by the per-key rate limit.",
)
ASK_REFUSED = Counter(
    "tickerwire_ask_refused_total",
    "Questions answered 'not enough evidence' instead of a guess, by reason (no_hits, "
    "weak_evidence, no_valid_citation).",
    ["reason"],
)
ASK_EVIDENCE = Histogram(
    "tickerwire_ask_evidence_score",
    "Evidence score of an ask (best cosine between the question and a sentence or table row "
    "of the retrieved chunks); refusals happen under the calibrated threshold.",
    buckets=(0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0),
)
ASK_CITATIONS_DROPPED = Counter(
    "tickerwire_ask_citations_dropped_total",
    "Citations an answer model gave that named no retrieved chunk, and were dropped.",
)
ENTITIES_KNOWN = Gauge(
    "tickerwire_query_entities_known",
    "Tickers the query service's entity registry has learned from the entities topic.",
)
QUERY_UNDERSTOOD = Counter(
    "tickerwire_query_understood_total",
    "Searches whose question named a company, ticker or period, by how it applied.",
    ["applied_as"],
)


# --- live events (GET /v1/events) -------------------------------------------------------------
EVENTS_PUBLISHED = Counter(
    "tickerwire_events_published_total",
    "Index events (a document indexed or deleted) published to the live feed.",
    ["event"],
)
EVENTS_DROPPED = Counter(
    "tickerwire_events_dropped_total",
    "Live-feed events dropped for a subscriber whose queue was full (a slow client).",
)
EVENTS_SUBSCRIBERS = Gauge(
    "tickerwire_events_subscribers",
    "Clients connected to GET /v1/events.",
)


# --- learning loop (query log, feedback, examples) --------------------------------------------
QUERY_LOG_RECORDS = Counter(
    "tickerwire_query_log_records_total",
    "Query-log and feedback records by topic and outcome: sent (Kafka has it), dropped (the "
    "buffer was full) or failed (Kafka refused it).",
    ["topic", "outcome"],
)
QUERY_LOG_BUFFER = Gauge(
    "tickerwire_query_log_buffer_records",
    "Query-log and feedback records waiting in the buffer for Kafka.",
)
FEEDBACK_RECEIVED = Counter(
    "tickerwire_feedback_total",
    "Ratings accepted by POST /v1/feedback, by rating (up, down).",
    ["rating"],
)
EXAMPLES_WRITTEN = Counter(
    "tickerwire_examples_total",
    "Joined queries the join agent wrote to tickerwire.examples, by kind and reason.",
    ["kind", "reason"],
)
FEEDBACK_REFUSED_DOWN = Counter(
    "tickerwire_feedback_refused_rated_down_total",
    "Refused answers that were rated down (a question the index may not cover).",
)
FEEDBACK_EXPIRED = Counter(
    "tickerwire_feedback_expired_total",
    "Feedback the join agent dropped because its query never arrived within the retention.",
)


# --- catalogue --------------------------------------------------------------------------------
def catalogue() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(exposed name, type, labels, help) of every metric defined above, in definition order.

    The README's metrics catalogue is checked against this (tests/unit/test_metrics_catalogue.py).
    """
    from prometheus_client.metrics import MetricWrapperBase

    rows: list[tuple[str, str, tuple[str, ...], str]] = []
    for value in list(globals().values()):
        if isinstance(value, MetricWrapperBase):
            kind = str(value._type)
            name = str(value._name) + ("_total" if kind == "counter" else "")
            labels = tuple(str(label) for label in value._labelnames)
            rows.append((name, kind, labels, str(value._documentation)))
    return rows
