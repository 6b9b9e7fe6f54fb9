"""``tickerwire export finetune|evalset`` and ``tickerwire report gaps`` (README, "Learning
loop"): each reads the compacted examples topic from the start, without a consumer group."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from tickerwire.core.errors import TickerwireError
from tickerwire.core.logging import configure_logging
from tickerwire.core.records import ExampleRecord
from tickerwire.core.settings import Settings, load_settings
from tickerwire.core.topics import EXAMPLES_TOPIC

export_app = typer.Typer(no_args_is_help=True)
report_app = typer.Typer(no_args_is_help=True)
console = Console()


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``report`` to the root app."""
    app.add_typer(
        export_app, name="export", help="Export the learning loop's examples (fine-tune, eval)."
    )
    app.add_typer(report_app, name="report", help="Reports on the learning loop's examples.")


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(fmt=settings.log_format, level="warning", service=False)
    return settings


def _examples(settings: Settings) -> list[ExampleRecord]:
    from tickerwire.adapters.query_log import read_topic
    from tickerwire.evaluation.learning import latest_examples

    return latest_examples(asyncio.run(read_topic(settings, EXAMPLES_TOPIC)))


def _fail(exc: TickerwireError) -> typer.Exit:
    Console(stderr=True).print(f"[red]failed:[/red] {exc}")
    return typer.Exit(1)


@export_app.command("finetune")
def finetune(
    output: Annotated[Path, typer.Option(help="Folder for train.jsonl, validation.jsonl.")],
    model: Annotated[str, typer.Option(help="The model to fine-tune (token limit, encoding).")] = (
        "gpt-4o-mini-2024-07-18"
    ),
    max_tokens: Annotated[int, typer.Option(min=256, help="Most tokens of one example.")] = 65_536,
    validation_share: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of examples for validation.")
    ] = 0.2,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (for the cost).")] = 3,
    price_per_mtok: Annotated[
        float, typer.Option(min=0.0, help="Training price in USD per million tokens.")
    ] = 3.0,
) -> None:
    """Approved, grounded answers as OpenAI chat fine-tuning files, validated, with a summary."""
    from tickerwire.evaluation.finetune import (
        FinetuneOptions,
        export_finetune,
        token_counter,
        validate_file,
    )

    settings = _settings()
    options = FinetuneOptions(model, max_tokens, validation_share, epochs, price_per_mtok)
    try:
        counter = token_counter(model)
        summary = export_finetune(_examples(settings), output, counter, options)
    except TickerwireError as exc:
        raise _fail(exc) from None
    for name in ("train.jsonl", "validation.jsonl"):
        errors = validate_file(output / name, counter[0], max_tokens)
        if errors:
            Console(stderr=True).print(f"[red]{name} fails validation:[/red] {dict(errors)}")
            raise typer.Exit(1)
    console.print_json(json.dumps(summary.to_json()))
    if not summary.token_counts_exact:
        console.print(
            f"[yellow]token counts are estimates[/yellow] ({summary.encoding}; {model}'s encoding "
            "is not available offline)"
        )


@export_app.command("evalset")
def evalset(
    output: Annotated[Path, typer.Option(help="Folder for corpus.jsonl and questions.jsonl.")],
    local: Annotated[
        bool, typer.Option("--local", help="Read documents from the index, not the running API.")
    ] = False,
) -> None:
    """Approved questions as a `tickerwire eval` dataset (cited documents are the relevant ids)."""
    settings = _settings()
    try:
        examples = _examples(settings)
        run = _evalset_local if local else _evalset_http
        summary = asyncio.run(run(settings, examples, output))
    except TickerwireError as exc:
        raise _fail(exc) from None
    console.print_json(json.dumps(summary.__dict__))


async def _evalset_http(settings: Settings, examples: list[ExampleRecord], output: Path) -> Any:
    from tickerwire.evaluation.learning import export_evalset

    headers = {}
    if settings.api_keys:
        headers["Authorization"] = f"Bearer {settings.api_keys[0].get_secret_value()}"
    base = f"http://{settings.http_host}:{settings.http_port}"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as client:

        async def fetch(doc_id: str) -> dict[str, Any] | None:
            resp = await client.get(f"/v1/documents/{doc_id}")
            if resp.status_code == 404:
                return None
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data

        return await export_evalset(examples, output, fetch)


async def _evalset_local(settings: Settings, examples: list[ExampleRecord], output: Path) -> Any:
    from tickerwire.evaluation.learning import export_evalset
    from tickerwire.query.search import hit_to_json
    from tickerwire.runtime import open_resources

    res = await open_resources(settings, with_index=True)
    try:
        index = res.index
        assert index is not None

        async def fetch(doc_id: str) -> dict[str, Any] | None:
            hits = await index.get_document(doc_id)
            if not hits:
                return None
            first = hits[0].payload
            return {**first, "doc_id": doc_id, "chunks": [hit_to_json(h) for h in hits]}

        return await export_evalset(examples, output, fetch)
    finally:
        await res.aclose()


@report_app.command("gaps")
def report_gaps(
    top: Annotated[int, typer.Option(min=1, help="How many groups to show.")] = 20,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Cosine at which questions group.")
    ] = 0.75,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The questions most often refused or rated down, grouped by similarity."""
    from tickerwire.adapters.embed_factory import open_embedder
    from tickerwire.evaluation.learning import gaps

    settings = _settings()

    async def run(examples: list[ExampleRecord]) -> list[dict[str, Any]]:
        embedder = open_embedder(settings)
        try:
            groups = await gaps(examples, embedder, threshold=threshold)
        finally:
            await embedder.aclose()
        return [g.to_json() for g in groups[:top]]

    try:
        rows = asyncio.run(run(_examples(settings)))
    except TickerwireError as exc:
        raise _fail(exc) from None
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Knowledge gaps: refused or rated-down questions")
    for col in ("#", "count", "refused", "rated down", "question", "similar"):
        table.add_column(col)
    for n, row in enumerate(rows, start=1):
        table.add_row(
            str(n),
            str(row["count"]),
            str(row["refused"]),
            str(row["rated_down"]),
            row["question"],
            "\n".join(row["similar"][:5]),
        )
    console.print(table)
