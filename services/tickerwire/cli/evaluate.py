"""``tickerwire eval --dataset DIR --output DIR``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tickerwire.core.errors import TickerwireError
from tickerwire.core.logging import configure_logging
from tickerwire.core.settings import Settings, load_settings


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the root app."""
    app.command("eval")(eval_command)


def eval_command(
    dataset: Annotated[
        Path, typer.Option(help="Folder with corpus.jsonl and questions.jsonl.", exists=True)
    ],
    output: Annotated[
        Path, typer.Option(help="Folder for eval.json and eval.png (chart: plot extra).")
    ],
    bootstrap: Annotated[
        str | None,
        typer.Option(
            help="Use this Kafka broker instead of a private one (its topics are shared)."
        ),
    ] = None,
    titles: Annotated[
        bool,
        typer.Option(
            "--titles/--no-titles",
            help="Put passage titles in front of chunks (helps only when titles are informative).",
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Ask only the first N questions.")] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Keep the evaluation index in this folder.")
    ] = None,
    answers: Annotated[
        bool,
        typer.Option(
            "--answers",
            help="Also ask /v1/ask-style questions: answer recall, citation precision, refusal "
            "rates with the evidence present and deleted.",
        ),
    ] = False,
    answer_questions: Annotated[
        int, typer.Option(min=1, help="Questions (a seeded sample) asked with --answers.")
    ] = 200,
    against: Annotated[
        list[str] | None,
        typer.Option(
            help="Score this existing index instead of ingesting the corpus (repeat it to "
            "compare): a collection name in server mode, an Edge index folder otherwise, e.g. "
            "the live one and the one `tickerwire reindex --no-swap` built.",
        ),
    ] = None,
) -> None:
    """Stream a QA corpus through the real pipeline into a fresh collection and score retrieval
    (or, with --against, score existing indexes side by side)."""
    from tickerwire.evaluation import run_eval
    from tickerwire.evaluation.report import PLOT_EXTRA_HINT

    settings = load_settings()
    configure_logging(fmt=settings.log_format, level="warning", service=False)
    console = Console(stderr=True)
    if against:
        _compare(settings, dataset, output, against, bootstrap, limit, console)
        return
    # SIGTERM takes the same path as Ctrl-C, so the private broker and worker are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run_eval(
            settings,
            dataset,
            output,
            bootstrap=bootstrap,
            titles=titles,
            limit=limit,
            console=console,
            work_dir=work_dir,
            answers=answers,
            answer_questions=answer_questions,
        )
    except TickerwireError as exc:
        console.print(f"[red]eval failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if "answers" in result.info:
        console.print({"answers": result.info["answers"]})
    console.print("report: " + " and ".join(str(path) for path in result.files))
    if not any(path.suffix == ".png" for path in result.files):
        console.print(f"no chart: {PLOT_EXTRA_HINT}")


def _compare(
    settings: Settings,
    dataset: Path,
    output: Path,
    against: list[str],
    bootstrap: str | None,
    limit: int | None,
    console: Console,
) -> None:
    from tickerwire.adapters.kafka_options import client_options
    from tickerwire.evaluation.compare import compare_indexes

    try:
        result = compare_indexes(
            settings,
            dataset,
            output,
            against,
            bootstrap=bootstrap or client_options(settings),
            limit=limit,
            console=console,
        )
    except TickerwireError as exc:
        console.print(f"[red]eval failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print("report: " + " and ".join(str(path) for path in result.files))
