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
    # Defaults tuned on shared/data/tatqa by sweeping Qdrant's own weighted RRF: equal weights
    # with k=60 lost to BM25 alone (nDCG@10 0.521 vs 0.558); k=1 with the sparse ranking
    # weighted 3:1 beats both (0.565). See the README's benchmark section.
    hybrid_rrf_k: int = Field(default=1, ge=1, description="RRF constant k of hybrid search.")
    hybrid_dense_weight: float = Field(
        default=1.0, ge=0, description="Weight of the dense ranking in hybrid RRF."
    )
    hybrid_sparse_weight: float = Field(
        default=3.0, ge=0, description="Weight of the sparse (BM25) ranking in hybrid RRF."
    )
    hybrid_prefetch: int = Field(
        default=100, ge=1, description="Candidates each side contributes to hybrid fusion."
    )

    # Pipeline
    chunk_tokens: int = Field(default=256, ge=16, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(default=32, ge=0, description="Token overlap between chunks.")
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
