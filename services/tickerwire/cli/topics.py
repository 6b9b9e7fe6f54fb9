"""`tickerwire topics create|list`: the Kafka topics of ``schemas/topics.yaml``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tickerwire.adapters.kafka_admin import (
    ensure_topics,
    list_topics,
    load_topic_specs,
)
from tickerwire.adapters.kafka_options import client_options
from tickerwire.core.errors import TickerwireError
from tickerwire.core.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Create and list tickerwire's Kafka topics.")

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

_BootstrapOption = Annotated[
    str | None,
    typer.Option("--bootstrap", help="host:port; defaults to TICKERWIRE_KAFKA_BOOTSTRAP."),
]


def _settings(bootstrap: str | None) -> Settings:
    """The settings, with ``--bootstrap`` (when given) naming the server."""
    return load_settings(**({"kafka_bootstrap": bootstrap} if bootstrap else {}))


@app.command()
def create(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Topics file (default: the topics.yaml of the schemas)."),
    ] = None,
    bootstrap: _BootstrapOption = None,
) -> None:
    """Create every topic of topics.yaml; topics that already exist are reported, not errors."""
    try:
        settings = _settings(bootstrap)
        specs = load_topic_specs(file)
        result = asyncio.run(
            ensure_topics(
                client_options(settings),
                specs,
                partitions=settings.kafka_partitions,
                replication=settings.kafka_replication,
            )
        )
    except TickerwireError as exc:
        _err.print(f"[red]error:[/red] {exc.reason}")
        raise typer.Exit(1) from exc
    for spec in specs:
        state = "created" if spec.name in result.created else "already exists"
        _out.print(f"{spec.name}: {state} (cleanup.policy={spec.cleanup_policy})")


@app.command("list")
def list_(bootstrap: _BootstrapOption = None) -> None:
    """List the topics the broker has."""
    try:
        names = asyncio.run(list_topics(client_options(_settings(bootstrap))))
    except TickerwireError as exc:
        _err.print(f"[red]error:[/red] {exc.reason}")
        raise typer.Exit(1) from exc
    for name in names:
        _out.print(name)
