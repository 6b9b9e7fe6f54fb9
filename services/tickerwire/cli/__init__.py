"""The ``tickerwire`` command line: thin entry points that build settings and call use cases."""

from __future__ import annotations

import sys

import pydantic
import typer

from tickerwire.cli import dlq, evaluate, kafka, learning, produce, reindex, run, schemas, topics

app = typer.Typer(
    name="tickerwire",
    no_args_is_help=True,
    help="tickerwire: streaming financial documents into a live, searchable index.",
    pretty_exceptions_show_locals=False,
)
app.add_typer(kafka.app, name="kafka", help="Start, stop and inspect the local Kafka broker.")
app.add_typer(topics.app, name="topics", help="Create the Kafka topics from schemas/topics.yaml.")
app.add_typer(dlq.app, name="dlq", help="List and replay dead-lettered records.")
app.add_typer(
    schemas.app, name="schemas", help="Generate or check schemas/*.json from the records."
)
produce.register(app)
run.register(app)
evaluate.register(app)
learning.register(app)
reindex.register(app)


def main() -> None:
    """Console-script entry point. Invalid settings are one line naming the variable, with
    exit status 2, not a traceback."""
    try:
        app()
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            name = "TICKERWIRE_" + "_".join(str(p) for p in error["loc"]).upper()
            print(f"error: {name}: {error['msg']}", file=sys.stderr)
        sys.exit(2)
