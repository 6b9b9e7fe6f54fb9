"""``make bench``: every quick benchmark, one after the other, results in ``bench/results/quick/``.

Each benchmark runs as its own process with small sizes (seconds to a few minutes each, about
15 minutes in all on 2 cores), so that a change that breaks or slows one shows up; the stored
results of the full runs (``bench/results/*.json``, the numbers in the README) are never
overwritten. The full-size commands are in the README's benchmark table and in each file's
docstring. ``hybrid_tune.py`` is left out: it needs an evaluation index (``tickerwire eval
--work-dir``) first.

    .venv/bin/python bench/run_all.py            # all of them
    .venv/bin/python bench/run_all.py --list     # their names and commands
    .venv/bin/python bench/run_all.py --only splitter idle

A benchmark that fails or takes longer than ``--timeout`` is reported and the rest still run; the
exit code is 1 when any failed. The summary is ``bench/results/quick/run_all.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUICK_DIR = HERE / "results" / "quick"

#: name → arguments of ``bench/<script>`` (small sizes; outputs go to QUICK_DIR).
QUICK: dict[str, list[str]] = {
    "sparse": ["sparse_eval.py", "--quick", "--output", str(QUICK_DIR / "sparse.json")],
    "splitter": ["splitter_bench.py", "--docs", "10", "--repeats", "1"],
    "embedder": [
        "embedder_bench.py",
        "--passages",
        "32",
        "--queries",
        "50",
        "--repeats",
        "1",
        "--batch-tokens",
        "1024",
        "--output",
        str(QUICK_DIR / "embedder.json"),
    ],
    "index": [
        "index_bench.py",
        "--points",
        "5000",
        "--queries",
        "50",
        "--commit-docs",
        "1000",
        "--no-gil-probe",
        "--out",
        str(QUICK_DIR / "index.json"),
    ],
    "idle": ["idle_bench.py", "--seconds", "5", "--settle", "2"],
    "floor": ["pipeline_floor.py", "--docs", "1000"],
    "ceiling": ["pipeline_ceiling.py", "--docs", "1000"],
    "efficiency": ["pipeline_efficiency.py", "--docs", "60", "--warmup", "4"],
    "freshness": ["freshness_bench.py", "--duration", "15", "--drain", "60"],
    "reindex": ["reindex_bench.py", "--docs", "100"],
}


def run(name: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run one benchmark script; its output streams through, the outcome is returned."""
    command = [sys.executable, str(HERE / args[0]), *args[1:]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TICKERWIRE_BENCH_RESULTS": str(QUICK_DIR)}
    print(f"\n=== {name}: {' '.join(args)}", flush=True)
    started = time.perf_counter()
    try:
        code = subprocess.run(command, env=env, cwd=HERE.parent, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = None
    seconds = round(time.perf_counter() - started, 1)
    status = "ok" if code == 0 else "timeout" if code is None else f"exit {code}"
    print(f"=== {name}: {status} in {seconds} s", flush=True)
    return {"name": name, "command": args, "status": status, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), help="run only these")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and stop")
    parser.add_argument("--timeout", type=float, default=900.0, help="bound of each one (s)")
    args = parser.parse_args(argv)
    if args.list:
        for name, command in QUICK.items():
            print(f"{name:12} bench/{' '.join(command)}")
        return 0
    QUICK_DIR.mkdir(parents=True, exist_ok=True)
    names = args.only or list(QUICK)
    outcomes = [run(name, QUICK[name], args.timeout) for name in names]
    summary = QUICK_DIR / "run_all.json"
    summary.write_text(json.dumps(outcomes, indent=2) + "\n", encoding="utf-8")
    print("\n" + "\n".join(f"{o['name']:12} {o['status']:10} {o['seconds']} s" for o in outcomes))
    print(f"wrote {summary}")
    return 0 if all(o["status"] == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
