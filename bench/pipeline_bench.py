"""Pipeline throughput benchmarks, one file each; this script runs one of them by name.

Each runs the real worker (``build_app`` + ``make_handlers``, all three stages in one process, as
``tickerwire up --no-http`` does) in this process's event loop, against a private Kafka broker
started on free loopback ports in a temp dir, with a Qdrant Edge index in the same temp dir.

``efficiency`` (``pipeline_efficiency.py``)
    end-to-end chunks/s ÷ the embedder alone, same model and batches (target ≥ 0.90).
``ceiling`` (``pipeline_ceiling.py``)
    a zero-cost embedder: what the stages and the framework reach (target ≥ 2,000 chunks/s).
``floor`` (``pipeline_floor.py``)
    stages that only forward records: what the framework alone costs.

Results go to ``bench/results/pipeline_<name>[_<tag>].json`` (+ PNG for efficiency)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py efficiency --docs 600
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py ceiling --docs 20000
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py ceiling --docs 600 --words 2000
    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_bench.py floor --docs 3000

The options of each are those of its own file (``bench/pipeline_floor.py --help``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import pipeline_ceiling
import pipeline_efficiency
import pipeline_floor

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], None]] = {
    "efficiency": pipeline_efficiency.main,
    "ceiling": pipeline_ceiling.main,
    "floor": pipeline_floor.main,
}


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in BENCHMARKS:
        sys.exit(f"usage: pipeline_bench.py {{{','.join(BENCHMARKS)}}} [options]\n\n{__doc__}")
    BENCHMARKS[args[0]](args[1:])


if __name__ == "__main__":
    main()
