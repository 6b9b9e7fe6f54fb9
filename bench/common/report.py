"""Reporting helpers: progress lines, percentiles, Prometheus samples, tables, CPU, JSON results."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from common.corpus import RESULTS_DIR


def log(message: str) -> None:
    """Progress line on stderr (tables and results go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def histogram_quantile(name: str, q: float, labels: dict[str, str] | None = None) -> float:
    """Prometheus-style quantile estimate from a histogram in this process's registry."""
    buckets: list[tuple[float, float]] = []
    for metric in REGISTRY.collect():
        for s in metric.samples:
            if s.name != f"{name}_bucket":
                continue
            if labels and any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            buckets.append((float(s.labels["le"]), s.value))
    return bucket_quantile(sorted(buckets), q)


def bucket_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile of sorted ``(le, cumulative count)`` buckets (NaN when empty)."""
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            span = count - prev_count
            frac = (rank - prev_count) / span if span else 1.0
            return prev_le + (le - prev_le) * frac
        prev_le, prev_count = le, count
    return buckets[-1][0]


def histogram_snapshot(name: str) -> dict[str, float]:
    """``{le: cumulative count}`` plus ``sum``/``count`` of an unlabelled histogram."""
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for s in metric.samples:
            if s.name == f"{name}_bucket":
                out[s.labels["le"]] = s.value
            elif s.name in (f"{name}_sum", f"{name}_count"):
                out[s.name.removeprefix(f"{name}_")] = s.value
    return out


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one Prometheus sample in this process (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def table(rows: Sequence[tuple[str, Any]], title: str) -> str:
    """A two-column text table."""
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def stage_rows(stages: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    """One table row per stage of a :class:`StageTimer` summary."""
    return [
        (
            f"stage {name}",
            f"{st['calls']} batches, {st['records']} records, "
            f"busy {st['busy_s']} s, mean batch {st['mean_batch']}",
        )
        for name, st in stages.items()
    ]


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": cores,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "note": "shared machine: other processes may compete for the cores (see loadavg)",
    }


def proc_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of ``pid`` (this process when None) from /proc."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


async def bounded(coro: Awaitable[Any], seconds: float, what: str) -> Any:
    """Await ``coro`` at most ``seconds``; TimeoutError names ``what``."""
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        raise TimeoutError(f"{what} did not finish within {seconds:.0f}s") from None


class CpuMeter:
    """CPU seconds of this process and of the broker JVM over a phase, with the load average."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self._start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self._start = (
            time.perf_counter(),
            proc_cpu_seconds(),
            proc_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0,
        )

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._start[0]
        own = proc_cpu_seconds() - self._start[1]
        broker = (proc_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0) - self._start[2]
        return {
            "wall_s": round(wall, 3),
            "process_cpu_s": round(own, 3),
            "broker_cpu_s": round(broker, 3),
            "process_cores_used": round(own / wall, 2) if wall else 0.0,
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        }
