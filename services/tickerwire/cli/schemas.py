"""`tickerwire schemas generate|check`: schemas/*.json, generated from the pydantic records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tickerwire.core import schema_export

app = typer.Typer(
    no_args_is_help=True, help="Generate or check schemas/*.json from the pydantic records."
)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

_DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Folder of the schema files; defaults to the repository's schemas/."
    ),
]


@app.command()
def generate(directory: _DirOption = None) -> None:
    """Write every schema file from its record model."""
    for path in schema_export.write(directory):
        _out.print(f"wrote {path}")


@app.command()
def check(directory: _DirOption = None) -> None:
    """Exit 1 when a committed schema file differs from what its model generates."""
    stale = schema_export.check(directory)
    if stale:
        _err.print(f"out of date: {', '.join(stale)}; run `tickerwire schemas generate` and commit")
        raise typer.Exit(1)
    _out.print("schemas are up to date")
