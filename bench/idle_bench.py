"""What an idle worker costs: CPU of the broker alone, then of the broker and an idle worker.

A worker waiting for records competes with nothing useful on a busy machine, but on the 2-core
single-node setup every CPU-ms it burns while idle is taken from the embedder once records flow.
The worker is the real one (all three stages, as ``tickerwire up --no-http`` runs them; the
zero-cost embedder of ``bench/common``, as no record is embedded), on a private broker.
Writes ``bench/results/idle.json``::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/idle_bench.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from common import (
    CpuMeter,
    InProcessWorker,
    environment,
    log,
    table,
    write_json,
    zero_session,
)


async def measure(seconds: float, settle: float) -> dict[str, Any]:
    async with zero_session("idle", "warning") as b:
        meter = CpuMeter(b.broker.status().pid)
        await asyncio.sleep(settle)
        meter.start()
        await asyncio.sleep(seconds)
        broker_alone = meter.stop()
        log(f"broker alone: {broker_alone}")
        worker = InProcessWorker(b.settings, b.res)
        await worker.start()
        try:
            await asyncio.sleep(settle)
            meter.start()
            await asyncio.sleep(seconds)
            with_worker = meter.stop()
            log(f"broker and idle worker: {with_worker}")
        finally:
            await worker.stop()
    return {
        "benchmark": "idle",
        "environment": environment(),
        "params": {"seconds": seconds, "settle_s": settle},
        "broker_alone": broker_alone,
        "broker_and_idle_worker": with_worker,
        "worker_cores": round(with_worker["process_cpu_s"] / with_worker["wall_s"], 3),
        "broker_cores_alone": round(broker_alone["broker_cpu_s"] / broker_alone["wall_s"], 3),
        "broker_cores_with_worker": round(with_worker["broker_cpu_s"] / with_worker["wall_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--settle", type=float, default=5.0, help="wait before each phase")
    args = parser.parse_args()
    result = asyncio.run(measure(args.seconds, args.settle))
    print(
        table(
            [
                ("broker alone (cores)", result["broker_cores_alone"]),
                ("broker with an idle worker (cores)", result["broker_cores_with_worker"]),
                ("IDLE WORKER (cores)", result["worker_cores"]),
            ],
            "Idle cost (CPU cores used while no record flows)",
        )
    )
    print(f"\nwrote {write_json('idle', result)}")


if __name__ == "__main__":
    main()
