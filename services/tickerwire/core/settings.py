"""Settings: built once from the environment (prefix ``TICKERWIRE_``), frozen, and passed down.

Nothing reads the environment at import time; call :func:`load_settings` in an entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tickerwire.core.ports import HybridParams


class Settings(BaseSettings):
    """Every setting of tickerwire; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="TICKERWIRE_",
        env_file=None,
        frozen=True,
        extra="ignore",
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
    # Chosen by cross-checking both dev sets (docs/retrieval.md, bench/fusion_sweep.py): min-max
    # score fusion with a dense share of 0.4 is the only option tried that beats the better
    # single mode on both TAT-QA (nDCG@10 0.572 vs sparse 0.558) and FinanceBench with metadata
    # headers (0.479 vs dense 0.434, subset). Weighted RRF (the index's own fusion) cannot: the
    # old k=1, 1:3 lost to dense on FinanceBench (0.379); k=2, 1:2 is its least-bad setting.
    # The default stays RRF until the end-to-end eval confirms min-max: on the sample feed with
    # query understanding, min-max ranked the NVIDIA earnings-preview story above the 10-Q that
    # answers "NVIDIA's third quarter of fiscal 2027" (tests/e2e/test_understanding_e2e.py).
    hybrid_fusion: Literal["rrf", "dbsf", "minmax", "adaptive"] = Field(
        default="rrf",
        description="How hybrid search fuses dense and sparse candidates: the index's weighted "
        "RRF, or client-side DBSF, min-max score fusion, or adaptive score fusion "
        "(pipeline/fusion.py; index adapters fuse client-side through fuse_hits).",
    )
    hybrid_dense_share: float = Field(
        default=0.4, ge=0, le=1, description="Dense share of min-max score fusion."
    )
    hybrid_rrf_k: int = Field(default=2, ge=1, description="RRF constant k of hybrid search.")
    hybrid_dense_weight: float = Field(
        default=1.0, ge=0, description="Weight of the dense ranking in hybrid RRF."
    )
    hybrid_sparse_weight: float = Field(
        default=2.0, ge=0, description="Weight of the sparse (BM25) ranking in hybrid RRF."
    )
    hybrid_prefetch: int = Field(
        default=100, ge=1, description="Candidates each side contributes to hybrid fusion."
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

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    log_format: Literal["json", "console", "auto"] = Field(
        default="auto", description="auto: JSON for services, console for the CLI."
    )

    @field_validator("api_rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '600/minute': {value!r}") from exc
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def hybrid_params(self) -> HybridParams:
        """The fusion parameters of hybrid search."""
        return HybridParams(
            rrf_k=self.hybrid_rrf_k,
            dense_weight=self.hybrid_dense_weight,
            sparse_weight=self.hybrid_sparse_weight,
            prefetch=self.hybrid_prefetch,
            fusion=self.hybrid_fusion,
            dense_share=self.hybrid_dense_share,
        )

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
