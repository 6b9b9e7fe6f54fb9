"""``tickerwire reindex``: rebuild the index from the raw topic and swap it in without downtime."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated

import typer
from rich.console import Console

from tickerwire.core.errors import TickerwireError
from tickerwire.core.logging import configure_logging
from tickerwire.core.settings import load_settings


def register(app: typer.Typer) -> None:
    """Add ``reindex`` to the root app."""
    app.command("reindex")(reindex_command)


def reindex_command(
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Throw an interrupted rebuild away instead of resuming."),
    ] = False,
    no_swap: Annotated[
        bool,
        typer.Option(
            "--no-swap",
            help="Stop once the rebuilt index has caught up (compare it with `tickerwire eval "
            "--against`); a later run without it resumes and swaps.",
        ),
    ] = False,
    drop_old: Annotated[
        bool,
        typer.Option("--drop-old", help="Server: delete the old collection after the swap."),
    ] = False,
) -> None:
    """Rebuild the index from the compacted raw topic with the current settings, then swap it
    in atomically while the live index keeps serving (Qdrant alias; Edge shard swap)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from tickerwire.runtime.reindex import reindex

    settings = load_settings()
    configure_logging(fmt=settings.log_format, level="warning", service=False)
    console = Console(stderr=True)
    with Progress(
        TextColumn("rebuild"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("rebuild", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        try:
            report = asyncio.run(
                reindex(
                    settings,
                    progress=advance,
                    restart=restart,
                    swap=not no_swap,
                    drop_old=drop_old,
                )
            )
        except TickerwireError as exc:
            console.print(f"[red]reindex failed:[/red] {exc}")
            raise typer.Exit(1) from None
    typer.echo(json.dumps(dataclasses.asdict(report)))
