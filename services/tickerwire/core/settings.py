"""Settings: built once from the environment (prefix ``TICKERWIRE_``), frozen, and passed down.

Nothing reads the environment at import time; call :func:`load_settings` in an entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tickerwire.core.ports import HybridParams


class Settings(BaseSettings):
    """Every setting of tickerwire; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="TICKERWIRE_",
        env_file=None,
        frozen=True,
        extra="ignore",
        # A validation error must not echo the inputs: they hold the SASL password and API keys.
        hide_input_in_errors=True,
    )

    # Kafka
    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="host:port of the Kafka bootstrap server; `tickerwire kafka up` listens here.",
    )
    kafka_partitions: int = Field(
        default=3, ge=1, description="Partitions for newly created topics."
    )
    kafka_replication: int = Field(
        default=1, ge=1, description="Replication factor for new topics."
    )
    app_id: str = Field(
        default="tickerwire",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer-group id of `tickerwire up` (stage workers add -STAGE).",
    )
    kafka_heap: str = Field(default="512m", description="JVM heap (-Xmx) of the local broker.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client connects: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or "
        "SASL_SSL (a user and password over TLS).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism; required with SASL_PLAINTEXT and SASL_SSL."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (never logged)."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the broker's certificate (SSL, SASL_SSL); "
        "unset means the system's trusted CAs.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require one (mTLS)."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of kafka_ssl_certfile."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that the broker's certificate names the host dialled."
    )

    # Local state
    data_dir: Path = Field(
        default=Path(".tickerwire"),
        description="All local state: Kafka data and jars cache, the Edge shard, faust tables.",
    )

    # HTTP
    http_host: str = Field(default="127.0.0.1", description="Bind address of the query API.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the query API.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys; empty means the API is open.",
    )

    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of `/metrics` of a `tickerwire worker STAGE` process (bound on "
        "TICKERWIRE_HTTP_HOST; 0 turns it off). `up` and `query` serve it on the API port.",
    )
    lag_interval_s: float = Field(
        default=15.0,
        ge=0,
        description="How often a worker computes its consumer groups' lag (committed against "
        "end offsets) for the metric; 0 turns it off.",
    )
    api_rate_limit: str = Field(
        default="600/minute",
        description="Requests each API key may make (an open API, without keys, is not limited), "
        "in the `limits` notation (e.g. `600/minute`, `20/second`).",
    )
    max_request_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest accepted query API request body (bytes)."
    )

    # Qdrant
    qdrant_url: str | None = Field(
        default=None, description="Qdrant server URL; unset means the embedded Qdrant Edge."
    )
    qdrant_api_key: SecretStr | None = Field(default=None, description="Qdrant server API key.")
    collection: str = Field(default="tickerwire", description="Qdrant collection name.")

    # Embeddings
    embedder: Literal["local", "openai"] = Field(default="local", description="Embedding back end.")
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "TICKERWIRE_OPENAI_API_KEY"),
        description="OpenAI API key (read from OPENAI_API_KEY, as the openai package does).",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "TICKERWIRE_OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server (read from OPENAI_BASE_URL).",
    )
    openai_embedding_model: str = Field(
        default="text-embedding-3-small", description="OpenAI embedding model."
    )
    openai_dimensions: int | None = Field(
        default=None, ge=1, description="Shortened embedding size (the API's `dimensions`)."
    )
    openai_max_concurrency: int = Field(
        default=4, ge=1, description="Embedding requests in flight at once."
    )
    openai_timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    openai_max_retries: int = Field(
        default=6,
        ge=0,
        description="Deprecated, unused: the stage batch path retries transient API errors for "
        "as long as they last (tickerwire.stages.retry).",
    )
    embed_threads: int | None = Field(
        default=None, ge=1, description="ONNX Runtime threads for the local model (all cores)."
    )
    embed_workers: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Sub-batches the local model runs at once, sharing embed_threads between them "
            "(default: one single-threaded worker per thread)."
        ),
    )

    # Search
    # Hybrid fusion, chosen on both dev sets through the real pipeline (docs/retrieval.md,
    # bench/fusion_index_sweep.py): each side's scores divided by its best score, summed with
    # equal weights (maxnorm, dense share 0.5) over 200 candidates a side. It beats the better
    # single mode on TAT-QA (sparse) and on FinanceBench (dense) in hit@10 and nDCG@10; min-max
    # and weighted RRF each lose on one of the two sets.
    hybrid_fusion: Literal["rrf", "dbsf", "minmax", "maxnorm", "adaptive"] = Field(
        default="maxnorm",
        description="How hybrid search fuses dense and sparse candidates: the index's weighted "
        "RRF, or client-side DBSF, min-max or max-normalized score fusion, or adaptive score "
        "fusion (pipeline/fusion.py; index adapters fuse client-side through fuse_hits).",
    )
    hybrid_dense_share: float = Field(
        default=0.5, ge=0, le=1, description="Dense share of score fusion (maxnorm, minmax)."
    )
    hybrid_rrf_k: int = Field(default=2, ge=1, description="RRF constant k of hybrid search.")
    hybrid_dense_weight: float = Field(
        default=1.0, ge=0, description="Weight of the dense ranking in hybrid RRF."
    )
    hybrid_sparse_weight: float = Field(
        default=2.0, ge=0, description="Weight of the sparse (BM25) ranking in hybrid RRF."
    )
    hybrid_prefetch: int = Field(
        default=200, ge=1, description="Candidates each side contributes to hybrid fusion."
    )

    # Answers (/v1/ask)
    llm: Literal["offline", "openai"] = Field(
        default="offline",
        description="Answer model: `offline` composes cited sentences with no network; `openai` "
        "asks a chat model (OPENAI_BASE_URL / OPENAI_API_KEY).",
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Chat model of the LLM answerer.")
    llm_temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Sampling temperature of the LLM answerer."
    )
    llm_timeout_s: float = Field(default=30.0, gt=0, description="Per-request LLM timeout.")
    llm_max_retries: int = Field(
        default=3, ge=0, description="Retries of a 429/5xx/timeout from the chat API."
    )
    llm_max_tokens: int = Field(default=400, ge=16, description="Longest LLM answer, in tokens.")
    # Calibrated by bench/refusal_calibration.py on tatqa and financebench-dev (docs/answers.md).
    ask_min_evidence: float = Field(
        default=0.65,
        ge=-1.0,
        le=1.0,
        description="Evidence score (best question-to-sentence cosine of the retrieved chunks) "
        "under which /v1/ask refuses instead of answering.",
    )

    # Learning loop (README, "Learning loop")
    query_log: bool = Field(
        default=True,
        description="Log every /v1/search and /v1/ask (question redacted, API key hashed) to "
        "tickerwire.queries, and accept POST /v1/feedback.",
    )
    #: A slow or absent broker never slows a query: beyond this, records are dropped (counted).
    query_log_buffer: int = Field(
        default=1000, ge=1, description="Query-log and feedback records held for Kafka at most."
    )
    query_log_key_salt: SecretStr | None = Field(
        default=None,
        description="Secret of the keyed hash (HMAC-SHA256) that stands for the API key in the "
        "logs; unset: a random one per process (hashes then differ across restarts).",
    )
    feedback_retention_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="How long the join agent keeps a query (or feedback that arrived before its "
        "query) waiting for its other half.",
    )

    # Pipeline
    chunk_tokens: int = Field(default=256, ge=16, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(default=32, ge=0, description="Token overlap between chunks.")
    chunk_header: Literal["title", "metadata"] = Field(
        default="metadata",
        description="Header before each chunk's embedded and sparse text: the document title, "
        "or a metadata line (company and tickers, form, fiscal period, then the title). "
        "Measured in docs/retrieval.md.",
    )
    chunk_sections: bool = Field(
        default=False,
        description="Also name the filing item a chunk is in ('Item 7. ...') in its header.",
    )
    preprocess_threads: int = Field(
        default=2,
        ge=1,
        description="Documents of a batch cleaned and chunked at once (threads; the splitter "
        "releases the GIL).",
    )
    tombstone_retention_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="How long a deleted document's version still beats a late, older upsert "
        "(seconds, by the records' Kafka timestamps).",
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=5000,
        description="How long the broker holds a stage's fetch that finds no new records: "
        "shorter is fresher, longer costs less CPU when idle.",
    )
    embed_batch_size: int = Field(
        default=128,
        ge=1,
        description="Max records per embed batch (its chunks are one embedding call).",
    )
    embed_batch_window_ms: int = Field(default=20, ge=0, description="Max wait to fill a batch.")
    index_batch_size: int = Field(default=512, ge=1, description="Max points per index upsert.")
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1, description="Largest accepted document body (bytes)."
    )
    index_optimize_min_unindexed: int = Field(
        default=20_000,
        ge=1,
        description="Edge: points searched without an HNSW index before maintenance optimizes "
        "(docs/index-maintenance.md).",
    )
    index_maintenance_interval_s: float = Field(
        default=30.0, gt=0, description="How often the worker checks whether to optimize."
    )
    index_maintenance_quiet_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds without an index batch before maintenance may optimize.",
    )
    reindex_batch: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="`tickerwire reindex`: raw records carried through the stages at a time; "
        "the rebuild's checkpoint is written after each such batch.",
    )
    shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest a worker's clean stop (SIGTERM/SIGINT: drain, commit, close) may "
        "take; then it exits at once, as a crash would. With the broker gone the clean stop "
        "would wait on commits and producer flushes for minutes; offsets are only committed "
        "for finished batches, so the unfinished ones are consumed again after the restart.",
    )

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    log_format: Literal["json", "console", "auto"] = Field(
        default="auto", description="auto: JSON for services, console for the CLI."
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '600/minute': {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol.endswith("SSL")
        prefix = f"TICKERWIRE_KAFKA_SECURITY_PROTOCOL={protocol}"
        if sasl:
            missing = [
                f"TICKERWIRE_KAFKA_{name.upper()}"
                for name, value in (
                    ("sasl_mechanism", self.kafka_sasl_mechanism),
                    ("sasl_username", self.kafka_sasl_username),
                    ("sasl_password", self.kafka_sasl_password),
                )
                if not (value.get_secret_value() if isinstance(value, SecretStr) else value)
            ]
            if missing:
                raise ValueError(f"{prefix} needs {', '.join(missing)}")
        elif self.kafka_sasl_mechanism or self.kafka_sasl_username or self.kafka_sasl_password:
            raise ValueError(
                f"{prefix} does not use SASL: set TICKERWIRE_KAFKA_SECURITY_PROTOCOL to "
                "SASL_SSL or SASL_PLAINTEXT, or unset the TICKERWIRE_KAFKA_SASL_* settings"
            )
        files = {
            "TICKERWIRE_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "TICKERWIRE_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "TICKERWIRE_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
        }
        named = [name for name, path in files.items() if path is not None]
        if named and not tls:
            raise ValueError(
                f"{prefix} does not use TLS, but {', '.join(named)} is set: use SSL or SASL_SSL"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError(
                "TICKERWIRE_KAFKA_SSL_CERTFILE and TICKERWIRE_KAFKA_SSL_KEYFILE go together"
            )
        for name, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"{name}={str(path)!r} is not a readable file")
        return self

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def hybrid_params(self) -> HybridParams:
        """The fusion parameters of hybrid search."""
        names = HybridParams.__dataclass_fields__
        return HybridParams(**{name: getattr(self, f"hybrid_{name}") for name in names})

    @property
    def kafka_dir(self) -> Path:
        """Kafka's jars cache, logs and data live below this folder."""
        return self.data_dir / "kafka"

    @property
    def edge_dir(self) -> Path:
        """The Qdrant Edge shard directory (one owning process)."""
        return self.data_dir / "qdrant-edge"

    @property
    def faust_dir(self) -> Path:
        """faust's local table state."""
        return self.data_dir / "faust"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
