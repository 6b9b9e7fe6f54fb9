"""A real Prometheus (Debian's binary) scrapes a running ``tickerwire up`` while documents stream.

Every PromQL expression of every dashboard panel and every rule of deploy/prometheus/alerts.yml is
sent to Prometheus's query API and must parse and evaluate; the panels that must show data while
documents stream (throughput, lag, freshness, points) do. Prometheus loads the committed
all-in-one config (pointed at the test's worker, scraping every second) and the committed rules.

For a few documents produced one at a time, the freshness histogram agrees with the time the
test measures itself, within the histogram's bucket resolution.

The series of the ingestion dashboard are drawn into a PNG (matplotlib); with
``TICKERWIRE_WRITE_DOCS=1`` it is written to docs/ingestion-dashboard.png (the README's picture).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import Worker, wait_until
from tests.e2e.test_pipeline_e2e import make_doc, paragraph, produce
from tests.kafka_support import free_port, private_broker
from tests.unit.test_deploy import REPO, alert_expressions, dashboard_expressions

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
#: Grafana's variables, replaced as Grafana would for a 1 s scrape interval.
GRAFANA_VARS = {"$__rate_interval": "15s", "$__interval": "1s"}
#: Panels that must show data while documents stream (ingestion dashboard titles).
MUST_SHOW_DATA = (
    "Throughput per stage",
    "Consumer lag",
    "Freshness: produced → searchable",
    "Index points",
)
STREAM_DOCS = 240
FRESHNESS_PROBES = 6
POLL_S = 0.02


def _prometheus_binary() -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("Debian's prometheus is not installed (.ci/run installs it)")
    return exe


class Prometheus:
    """A Prometheus server on a free loopback port in a temp dir; stopped by its pid."""

    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus-allinone.yml").read_text("utf-8"))
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
        (job,) = config["scrape_configs"]
        job["static_configs"][0]["targets"] = [target]
        shutil.copy(PROMETHEUS_DIR / "alerts.yml", workdir / "alerts.yml")
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), "utf-8")
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    _prometheus_binary(),
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30.0)
        wait_until(self._ready, 60, f"Prometheus to be ready (log: {self.log})")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text(errors='replace')}")
        try:
            return self.client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str, **params: Any) -> dict[str, Any]:
        path = "/api/v1/query_range" if "step" in params else "/api/v1/query"
        resp = self.client.get(path, params={"query": expr, **params})
        body: dict[str, Any] = resp.json()
        assert resp.status_code == 200 and body["status"] == "success", (
            f"{expr!r}: {resp.status_code} {body.get('errorType')}: {body.get('error')}"
        )
        return body["data"]  # type: ignore[no-any-return]

    def query_rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health (``ok``, ``err``, ``unknown``)."""
        body = self.client.get("/api/v1/rules").json()
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def grafana_to_promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def freshness_buckets(worker: Worker) -> dict[float, float]:
    """Cumulative counts of tickerwire_freshness_seconds per upper bound, from /metrics."""
    text = worker.client.get("/metrics").text
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "tickerwire_freshness_seconds_bucket":
                out[float(s.labels["le"])] = s.value
    return out


def _indexed(worker: Worker, doc_id: str) -> Callable[[], bool]:
    return lambda: worker.document_ids(doc_id) is not None


@pytest.fixture
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this test's own: the session broker's topics hold the records of earlier
    tests, which a new consumer group would read first (the probes' timing would include them)."""
    with private_broker(tmp_path_factory.mktemp("kafka-prom")) as bootstrap:
        yield bootstrap


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(
        bootstrap=kafka_bootstrap,
        data_dir=tmp_path / "worker",
        app_id=f"prom-{uuid.uuid4().hex[:8]}",
        http_port=free_port(),
        env={
            "TICKERWIRE_CHUNK_TOKENS": "64",
            "TICKERWIRE_CHUNK_OVERLAP": "0",
            "TICKERWIRE_LAG_INTERVAL_S": "1",
        },
    )
    w.start()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def prometheus(worker: Worker, tmp_path: Path) -> Iterator[Prometheus]:
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    prom = Prometheus(workdir, f"127.0.0.1:{worker.http_port}")
    try:
        yield prom
    finally:
        prom.close()


def test_dashboards_and_rules_evaluate_on_a_real_prometheus(
    worker: Worker, prometheus: Prometheus, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    rng = random.Random(12)

    # 1. Freshness measured by the test, one document at a time, against the histogram.
    before = freshness_buckets(worker)
    measured: list[float] = []
    for i in range(FRESHNESS_PROBES):
        doc = make_doc(f"prom-{tag}-probe-{i}", 1, [paragraph(rng, f"Probe{i}")])
        start = time.time()
        produce(kafka_bootstrap, [doc])
        wait_until(_indexed(worker, str(doc["doc_id"])), 60, "a probe document", POLL_S)
        measured.append(time.time() - start)
    after = freshness_buckets(worker)
    delta = {le: after[le] - before.get(le, 0.0) for le in after}
    assert delta[math.inf] == FRESHNESS_PROBES
    # The histogram's time (produce timestamp -> commit applied) is at most what the test saw
    # (before produce -> seen by a poll), and at least that less the poll period and an HTTP
    # round trip (slack): per bucket bound, the counts must agree.
    slack = 0.25
    for le, count in delta.items():
        at_most = sum(1 for m in measured if m - slack <= le)
        at_least = sum(1 for m in measured if m <= le)
        assert at_least <= count <= at_most, (le, count, measured)

    # 2. A stream of documents while Prometheus scrapes every second.
    t0 = time.time()
    done = threading.Event()

    def feed() -> None:
        for b in range(0, STREAM_DOCS, 8):
            docs = [
                make_doc(f"prom-{tag}-{i}", 1, [paragraph(rng, f"Co{i} p{p}") for p in range(2)])
                for i in range(b, b + 8)
            ]
            produce(kafka_bootstrap, docs)
            time.sleep(0.25)
        done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    feeder.join(timeout=300)
    assert done.is_set()
    wait_until(
        lambda: worker.document_ids(f"prom-{tag}-{STREAM_DOCS - 1}") is not None,
        180,
        "the last streamed document",
    )
    time.sleep(4)  # a few more scrapes and lag computations after the last record
    t1 = time.time()

    # 3. Every panel expression parses and evaluates; the ingestion panels that must show data do.
    series: dict[str, list[dict[str, Any]]] = {}
    for dashboard, title, expr, legend in dashboard_expressions():
        data = prometheus.query(grafana_to_promql(expr), start=t0, end=t1, step=1)
        assert data["resultType"] == "matrix"
        if dashboard == "tickerwire-ingestion.json":
            series.setdefault(title, []).extend({"legend": legend, **r} for r in data["result"])
    for title in MUST_SHOW_DATA:
        values = [
            float(v)
            for r in series.get(title, [])
            for _, v in r["values"]
            if v not in ("NaN", "+Inf", "-Inf")
        ]
        assert values, f"panel {title!r} shows no data"
    points = max(float(v) for r in series["Index points"] for _, v in r["values"])
    assert points >= STREAM_DOCS  # at least one chunk per streamed document
    throughput = max(float(v) for r in series["Throughput per stage"] for _, v in r["values"])
    assert throughput > 0

    # 4. Every recording and alerting rule evaluates, as a query and inside Prometheus.
    for _, expr in alert_expressions():
        prometheus.query(expr, time=t1)
    rules = prometheus.query_rules()
    assert {r["name"] for r in rules} == {name for name, _ in alert_expressions()}
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad

    # 5. The ingestion dashboard as a picture (no Grafana server here).
    png = tmp_path / "ingestion-dashboard.png"
    render_dashboard(series, png, t0)
    assert png.stat().st_size > 10_000
    if os.environ.get("TICKERWIRE_WRITE_DOCS") == "1":
        shutil.copy(png, REPO / "docs" / "ingestion-dashboard.png")
        (REPO / "docs" / "ingestion-dashboard.json").write_text(
            json.dumps({"measured_freshness_s": measured}, indent=2) + "\n", "utf-8"
        )


def legend_label(legend: str, labels: dict[str, str]) -> str:
    """Grafana's legend format (``{{label}}``) filled from a series' labels."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), legend)


def render_dashboard(series: dict[str, list[dict[str, Any]]], path: Path, t0: float) -> None:
    """The ingestion dashboard's panels as a grid of line charts, from query_range results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = list(series)
    cols = 3
    rows = math.ceil(len(titles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 5.2, rows * 2.9), squeeze=False)
    for ax, title in zip(axes.flat, titles, strict=False):
        for r in series[title]:
            pts = [(float(t) - t0, float(v)) for t, v in r["values"] if v != "NaN"]
            if not pts:
                continue
            label = legend_label(r["legend"], r["metric"])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label.strip()[:48])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.lines:
            ax.legend(fontsize=6, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(titles) :]:
        ax.axis("off")
    fig.suptitle("tickerwire · Ingestion (real Prometheus, scraped every 1 s)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
