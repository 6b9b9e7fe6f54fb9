"""`tickerwire kafka up|down|status`: the local Apache Kafka broker (KRaft, one node, loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from tickerwire.core.errors import TickerwireError
from tickerwire.core.settings import load_settings
from tickerwire.localbroker import BrokerStatus, LocalBroker

app = typer.Typer(
    no_args_is_help=True,
    help="Run the local Apache Kafka broker on TICKERWIRE_KAFKA_BOOTSTRAP's port.",
)

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _broker() -> LocalBroker:
    try:
        return LocalBroker.from_settings(load_settings())
    except TickerwireError as exc:
        _err.print(f"[red]error:[/red] {exc.reason}")
        raise typer.Exit(2) from exc


@contextmanager
def _local_broker() -> Iterator[LocalBroker]:
    """The local broker of the settings; its errors end the command with status 1 and the
    reason on stderr."""
    try:
        yield _broker()
    except TickerwireError as exc:
        _err.print(f"[red]error:[/red] {exc.reason}")
        raise typer.Exit(1) from exc


def _seconds(help_text: str) -> Any:
    """A ``--timeout`` option in seconds (at least 1)."""
    return typer.Option(help=help_text, min=1)


@app.command()
def up(
    timeout: Annotated[float, _seconds("Seconds to wait for the broker to answer.")] = 90.0,
) -> None:
    """Start the broker (fetching its jars on first use); a no-op when it already runs."""
    with _local_broker() as broker:
        result = broker.up(timeout)
    status = result.status
    if result.started:
        _out.print(
            f"kafka started: pid {status.pid}, {status.bootstrap}, "
            f"ready in {result.elapsed_s:.1f}s (logs: {status.log_file})"
        )
    else:
        _out.print(f"kafka is already running: pid {status.pid}, {status.bootstrap}")


@app.command()
def down(
    timeout: Annotated[
        float, _seconds("Seconds to wait for a clean shutdown before SIGKILL.")
    ] = 30.0,
) -> None:
    """Stop the broker started by `kafka up` (SIGTERM, then SIGKILL after the timeout)."""
    with _local_broker() as broker:
        stopped = broker.down(timeout)
    _out.print("kafka stopped" if stopped else "kafka was not running")


def _describe(status: BrokerStatus) -> str:
    if status.running:
        return f"running: pid {status.pid}, {status.bootstrap}, data {status.data_dir}"
    note = " (but another process listens on that port)" if status.listening else ""
    return f"stopped: {status.bootstrap}{note}, data {status.data_dir}"


@app.command()
def status() -> None:
    """Show whether the broker runs; exit code 0 when it runs, 3 when it is stopped."""
    with _local_broker() as broker:
        current = broker.status()
    _out.print(f"kafka {_describe(current)}")
    if not current.running:
        raise typer.Exit(3)
