"""``tickerwire dlq list`` and ``tickerwire dlq replay``."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tickerwire.adapters.dlq import DlqFilter, read_dlq, replay
from tickerwire.adapters.kafka_options import client_options
from tickerwire.core.logging import configure_logging
from tickerwire.core.settings import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console()
err = Console(stderr=True)

StageOpt = Annotated[str | None, typer.Option("--stage", help="preprocess, embed or index.")]
ClassOpt = Annotated[str | None, typer.Option("--error-class", help="e.g. ValidationError.")]
DocOpt = Annotated[str | None, typer.Option("--doc-id", help="Only this document.")]
TopicOpt = Annotated[str | None, typer.Option("--topic", help="Only records from this topic.")]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="KEY=VALUE with KEY one of stage, error_class, doc_id, topic (repeatable).",
    ),
]
_FILTER_KEYS = ("stage", "error_class", "doc_id", "topic")


def _filter(
    stage: str | None,
    error_class: str | None,
    doc_id: str | None,
    topic: str | None,
    extra: list[str] | None,
) -> DlqFilter:
    """One DlqFilter from the named options and any ``--filter KEY=VALUE``."""
    values: dict[str, str | None] = {
        "stage": stage,
        "error_class": error_class,
        "doc_id": doc_id,
        "topic": topic,
    }
    for item in extra or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _FILTER_KEYS:
            raise typer.BadParameter(
                f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(_FILTER_KEYS)}",
                param_hint="--filter",
            )
        values[key] = value
    return DlqFilter(**values)


def _load(flt: DlqFilter) -> list:  # type: ignore[type-arg]
    settings = load_settings()
    configure_logging(fmt=settings.log_format, level="warning", service=False)
    return asyncio.run(
        read_dlq(
            client_options(settings),
            flt,
            on_unreadable=lambda p, o, why: err.print(f"[yellow]skipped {p}:{o}: {why}[/yellow]"),
        )
    )


@app.command("list")
def list_(
    stage: StageOpt = None,
    error_class: ClassOpt = None,
    doc_id: DocOpt = None,
    topic: TopicOpt = None,
    filters: FilterOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per line.")] = False,
) -> None:
    """Show dead-lettered records with their stage, error class and reason."""
    entries = _load(_filter(stage, error_class, doc_id, topic, filters))
    if as_json:
        for e in entries:
            typer.echo(
                json.dumps(
                    {"partition": e.partition, "offset": e.offset, **e.record.to_json_dict()}
                )
            )
        return
    table = Table(title=f"{len(entries)} dead-lettered record(s)")
    for col in ("dlq offset", "stage", "error class", "doc_id", "from", "reason"):
        table.add_column(col)
    for e in entries:
        r = e.record
        src = f"{r.original.topic}:{r.original.partition}:{r.original.offset}"
        table.add_row(
            f"{e.partition}:{e.offset}", r.stage, r.error_class, r.doc_id or "-", src, r.reason
        )
    console.print(table)


@app.command("replay")
def replay_(
    stage: StageOpt = None,
    error_class: ClassOpt = None,
    doc_id: DocOpt = None,
    topic: TopicOpt = None,
    filters: FilterOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be sent.")
    ] = False,
) -> None:
    """Re-produce matching dead letters to their original topic (once the cause is fixed)."""
    settings = load_settings()
    entries = _load(_filter(stage, error_class, doc_id, topic, filters))
    if dry_run:
        console.print(f"would replay {len(entries)} record(s)")
        return
    n = asyncio.run(replay(client_options(settings), entries))
    console.print(f"replayed {n} record(s)")
