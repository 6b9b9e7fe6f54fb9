"""``tickerwire eval --against``: score indexes that already exist, side by side.

After ``tickerwire reindex --no-swap`` the rebuilt index sits next to the live one (server: the
collection ``<name>__g<N>``; Edge: ``<data dir>/qdrant-edge/reindex``); scoring both on the same
questions says whether the swap is worth it. Nothing is ingested: the questions run against each
index as the query API would, with the entity registry read from the deployment's Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tickerwire.adapters.kafka_options import KafkaConnection
from tickerwire.core.errors import ConfigError
from tickerwire.core.settings import Settings
from tickerwire.evaluation.dataset import load_dataset
from tickerwire.evaluation.report import EvalResult, print_table, write_report
from tickerwire.evaluation.run import ask_all


def compare_indexes(
    settings: Settings,
    dataset_dir: Path,
    output: Path,
    targets: Sequence[str],
    *,
    bootstrap: KafkaConnection,
    limit: int | None = None,
    console: Console | None = None,
) -> EvalResult:
    """Score every mode on each of ``targets``: Qdrant collection names (or aliases) in server
    mode, Edge index directories otherwise. Modes are reported as ``<target> · <mode>``."""
    console = console or Console(stderr=True)
    data = load_dataset(dataset_dir, limit=limit)
    server = settings.qdrant_url is not None
    modes: dict[str, dict[str, float]] = {}
    for target in targets:
        if server:
            scored = asyncio.run(
                ask_all(
                    settings.model_copy(update={"collection": target}),
                    data.questions,
                    console,
                    bootstrap,
                )
            )
        else:
            path = Path(target)
            if not (path / "current").is_symlink():
                raise ConfigError(f"{path} holds no Edge index (no `current` shard link)")
            scored = asyncio.run(ask_all(settings, data.questions, console, bootstrap, path))
        modes.update({f"{target} · {mode}": metrics for mode, metrics in scored.items()})
    result = EvalResult(
        modes=modes,
        info={
            "compared": list(targets),
            "questions": len(data.questions),
            "backend": "server" if server else "edge",
        },
    )
    result.files = write_report(result, output)
    print_table(result, console)
    return result
