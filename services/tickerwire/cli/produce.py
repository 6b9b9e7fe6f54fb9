"""`tickerwire produce PATH...`: send files of documents to Kafka, reporting every rejected record.

:func:`register` adds it to the main app as a command (``produce_command``), not as a sub-app;
``app`` here is a one-command Typer for running this module on its own.

Exit codes: 0 when everything was produced, 1 when any record was rejected (or Kafka could not be
reached), 2 for usage errors.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Annotated

import pydantic
import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from tickerwire.adapters.kafka_options import client_options
from tickerwire.core.errors import BrokerError
from tickerwire.core.logging import configure_logging
from tickerwire.core.settings import load_settings
from tickerwire.produce import RAW_TOPIC, ProduceSummary, Rejection, produce_paths

__all__ = ["app", "produce_command", "register"]


class _RichProgress:
    """A files bar with produced/rejected counts, drawn on stderr."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "files · {task.fields[produced]} produced · {task.fields[rejected]} rejected"
            ),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._produced = 0
        self._rejected = 0

    def __enter__(self) -> _RichProgress:
        self._bar.start()
        self._task = self._bar.add_task("reading", total=None, produced=0, rejected=0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def _update(self, **fields: object) -> None:
        if self._task is not None:
            self._bar.update(self._task, **fields)  # type: ignore[arg-type]

    def files(self, total: int) -> None:
        self._update(total=total)

    def file_started(self, display: str) -> None:
        self._update(description=display)

    def file_done(self, display: str) -> None:
        if self._task is not None:
            self._bar.advance(self._task)

    def record(self, *, produced: bool) -> None:
        if produced:
            self._produced += 1
        else:
            self._rejected += 1
        self._update(produced=self._produced, rejected=self._rejected)


def produce_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Files (.jsonl/.ndjson, .csv, .xml/.rss/.atom, .html/.htm) or directories.",
            show_default=False,
        ),
    ],
    topic: Annotated[str, typer.Option(help="Topic to produce to.")] = RAW_TOPIC,
    bootstrap: Annotated[
        str | None,
        typer.Option(
            help="Kafka host:port (default: $TICKERWIRE_KAFKA_BOOTSTRAP)", show_default=False
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Largest accepted body in UTF-8 bytes (default: $TICKERWIRE_MAX_BODY_BYTES)",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and validate only; send nothing.")
    ] = False,
) -> None:
    """Produce raw documents from files to Kafka; list rejected records as path:line: reason."""
    overrides: dict[str, object] = {}
    if bootstrap is not None:
        overrides["kafka_bootstrap"] = bootstrap
    if max_body_bytes is not None:
        overrides["max_body_bytes"] = max_body_bytes
    try:
        settings = load_settings(**overrides)
    except pydantic.ValidationError as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=False)

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def report(rejection: Rejection) -> None:
        console.print(str(rejection), markup=False)

    async def run(progress: _RichProgress | None) -> ProduceSummary:
        return await produce_paths(
            paths,
            bootstrap_servers=client_options(settings),
            max_body_bytes=settings.max_body_bytes,
            topic=topic,
            dry_run=dry_run,
            on_rejection=report,
            progress=progress,
        )

    try:
        if sys.stderr.isatty():
            with _RichProgress(console) as progress:
                summary = asyncio.run(run(progress))
        else:
            summary = asyncio.run(run(None))
    except (KafkaError, BrokerError) as exc:
        console.print(
            f"error: cannot produce to Kafka at {settings.kafka_bootstrap}: {exc}", markup=False
        )
        raise typer.Exit(1) from exc
    note = " (dry run: nothing sent)" if dry_run else ""
    typer.echo(f"produced {summary.produced}, rejected {summary.rejected}{note}")
    if not summary.ok:
        raise typer.Exit(1)


app = typer.Typer(help="Produce documents to Kafka.", add_completion=False)
app.command("produce")(produce_command)


def register(parent: typer.Typer) -> None:
    """Add ``produce PATH...`` to ``parent``."""
    parent.command("produce")(produce_command)
