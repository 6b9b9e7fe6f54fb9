"""The evaluation report: ``eval.json``, a console table, and a bar chart when matplotlib is there.

matplotlib is the optional ``plot`` extra (``uv sync --extra plot``; ``make setup`` installs it).
It is imported only when a chart is written, so the worker never needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tickerwire.evaluation.metrics import METRICS

PLOT_EXTRA_HINT = "install the plot extra for eval.png: uv sync --extra plot"


@dataclass
class EvalResult:
    """Metrics per mode, plus how the run went, and the report files once written."""

    modes: dict[str, dict[str, float]]
    info: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def write_report(result: EvalResult, output: Path) -> list[Path]:
    """Write ``eval.json`` (metrics per mode, run info under ``_run``) and, if it can, ``eval.png``.

    Returns the files written: the chart is left out when matplotlib is not installed.
    """
    output.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {**result.modes, "_run": result.info}
    report = output / "eval.json"
    report.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    chart = output / "eval.png"
    return [report, chart] if write_chart(result, chart) else [report]


def write_chart(result: EvalResult, path: Path) -> bool:
    """A bar chart of every metric per mode; False (nothing written) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(result.modes)
    for i, (mode, metrics) in enumerate(result.modes.items()):
        xs = [j + i * width for j in range(len(METRICS))]
        bars = ax.bar(xs, [metrics[m] for m in METRICS], width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([j + width for j in range(len(METRICS))], METRICS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"retrieval quality ({result.info.get('questions')} questions)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def print_table(result: EvalResult, console: Console) -> None:
    """The metrics as a table on the console."""
    table = Table(title="retrieval quality")
    table.add_column("mode")
    for m in METRICS:
        table.add_column(m, justify="right")
    for mode, metrics in result.modes.items():
        table.add_row(mode, *(f"{metrics[m]:.3f}" for m in METRICS))
    console.print(table)


def progress_bar(console: Console) -> Progress:
    """The progress display of an evaluation run (produce, index, and each mode's questions)."""
    return Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
