"""The Grafana dashboards of tickerwire, generated with grafana-foundation-sdk.

    .venv/bin/python deploy/grafana/dashboards.py          # rewrite dashboards/*.json
    .venv/bin/python deploy/grafana/dashboards.py --check  # exit 1 when a file is out of date

Edit the panels here, never the JSON. Every query uses the datasource provisioned with uid
``prometheus`` (provisioning/datasources/prometheus.yml); ``$__rate_interval`` is Grafana's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: Sequence[Query]
    unit: str
    kind: str = "timeseries"  # or "stat", "heatmap"
    width: int = 12


def quantiles(metric: str, by: str = "", qs: Sequence[float] = (0.5, 0.95, 0.99)) -> list[Query]:
    """p50/p95/p99 (or ``qs``) of a histogram, per ``by`` labels when given."""
    group = f"le, {by}" if by else "le"
    legend_by = "".join(f" {{{{{label.strip()}}}}}" for label in by.split(",") if label.strip())
    return [
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"p{round(q * 100)}{legend_by}",
        )
        for q in qs
    ]


INGESTION: list[Panel] = [
    Panel(
        "Throughput per stage",
        "Records each stage consumed per second, by outcome (ok, noop, stale, dlq).",
        [
            Query(
                f"sum by (stage, outcome) (rate(tickerwire_stage_records_total[{RATE}]))",
                "{{stage}} {{outcome}}",
            )
        ],
        "ops",
    ),
    Panel(
        "Consumer lag",
        "Records each consumer group still has to read, per topic (end minus committed offset).",
        [
            Query(
                "sum by (group, topic) "
                "(max by (group, topic, partition) (tickerwire_consumer_lag_records))",
                "{{group}} {{topic}}",
            )
        ],
        "short",
    ),
    Panel(
        "Freshness: produced → searchable",
        "Time from a document's produce timestamp to its commit applied to the index. "
        "Objective: p99 under 1 s.",
        quantiles("tickerwire_freshness_seconds"),
        "s",
    ),
    Panel(
        "Freshness: published → searchable",
        "Time from a document's published-at to searchable (includes time before produce).",
        quantiles("tickerwire_freshness_published_seconds", qs=(0.5, 0.99)),
        "s",
    ),
    Panel(
        "Dead letters",
        "Records sent to tickerwire.docs.dlq per second, by stage and error class.",
        [
            Query(
                f"sum by (stage, error_class) (rate(tickerwire_dlq_records_total[{RATE}]))",
                "{{stage}} {{error_class}}",
            )
        ],
        "ops",
    ),
    Panel(
        "Embedding batch latency",
        "Time one embedding call took, per embedder.",
        quantiles("tickerwire_embed_batch_seconds", by="embedder", qs=(0.5, 0.99)),
        "s",
    ),
    Panel(
        "Embedded texts",
        "Passages embedded per second, and embedding requests by status (OpenAI).",
        [
            Query(
                f"sum by (embedder) (rate(tickerwire_embed_texts_total[{RATE}]))",
                "texts {{embedder}}",
            ),
            Query(
                "sum by (status) "
                f'(rate(tickerwire_openai_requests_total{{endpoint="embeddings"}}[{RATE}]))',
                "requests {{status}}",
            ),
        ],
        "ops",
    ),
    Panel(
        "Embedding tokens",
        "Tokens sent to the OpenAI-compatible API per second, by model.",
        [
            Query(
                f"sum by (model) (rate(tickerwire_openai_tokens_total[{RATE}]))",
                "{{model}}",
            )
        ],
        "short",
        width=6,
    ),
    Panel(
        "Embedding cost",
        "Estimated spend in US dollars per hour, by model (from the price table).",
        [
            Query(
                f"sum by (model) (rate(tickerwire_openai_cost_usd_total[{RATE}])) * 3600",
                "{{model}}",
            )
        ],
        "currencyUSD",
        width=6,
    ),
    Panel(
        "Index points",
        "Points in the vector index.",
        [Query("max by (backend) (tickerwire_index_points)", "{{backend}}")],
        "short",
    ),
    Panel(
        "Index writes",
        "Points upserted and deleted per second.",
        [
            Query(
                f"sum by (backend) (rate(tickerwire_index_points_upserted_total[{RATE}]))",
                "upserted {{backend}}",
            ),
            Query(
                f"sum by (backend) (rate(tickerwire_index_points_deleted_total[{RATE}]))",
                "deleted {{backend}}",
            ),
        ],
        "ops",
    ),
    Panel(
        "Stage batch latency",
        "Time a stage spent on one batch.",
        quantiles("tickerwire_stage_process_seconds", by="stage", qs=(0.5, 0.99)),
        "s",
    ),
    Panel(
        "Redactions",
        "PII spans replaced by placeholders per second, by kind.",
        [
            Query(
                f"sum by (kind) (rate(tickerwire_preprocess_pii_redacted_total[{RATE}]))",
                "{{kind}}",
            )
        ],
        "ops",
    ),
]

QUERY: list[Panel] = [
    Panel(
        "Requests per second",
        "Query API requests per second, by endpoint and status.",
        [
            Query(
                f"sum by (endpoint, status) (rate(tickerwire_query_requests_total[{RATE}]))",
                "{{endpoint}} {{status}}",
            )
        ],
        "reqps",
    ),
    Panel(
        "Request latency",
        "Whole-request latency percentiles, by endpoint.",
        quantiles("tickerwire_query_request_seconds", by="endpoint"),
        "s",
    ),
    Panel(
        "Error ratio",
        "Share of requests answered 5xx, by endpoint.",
        [
            Query(
                "sum by (endpoint) "
                f'(rate(tickerwire_query_requests_total{{status=~"5.."}}[{RATE}])) '
                f"/ sum by (endpoint) (rate(tickerwire_query_requests_total[{RATE}]))",
                "{{endpoint}}",
            )
        ],
        "percentunit",
    ),
    Panel(
        "Phase latency (p95)",
        "p95 of each query phase (embed, search, answer, total), by endpoint.",
        quantiles("tickerwire_query_seconds", by="endpoint, phase", qs=(0.95,)),
        "s",
    ),
    Panel(
        "Refusals",
        "Questions answered 'not enough evidence' per second, by reason; citations dropped.",
        [
            Query(
                f"sum by (reason) (rate(tickerwire_ask_refused_total[{RATE}]))",
                "refused {{reason}}",
            ),
            Query(
                f"sum(rate(tickerwire_ask_citations_dropped_total[{RATE}]))",
                "citations dropped",
            ),
        ],
        "ops",
    ),
    Panel(
        "Top-score distribution",
        "Distribution of the top hit's score per query (heatmap of the histogram buckets).",
        [
            Query(
                f"sum by (le) (rate(tickerwire_query_top_score_bucket[{RATE}]))",
                "{{le}}",
            )
        ],
        "short",
        kind="heatmap",
    ),
    Panel(
        "Learning loop: feedback",
        "Ratings per second (up, down), the approval ratio (share rated up), refusals rated "
        "down, and query-log records dropped because Kafka was slow or away.",
        [
            Query(
                f"sum by (rating) (rate(tickerwire_feedback_total[{RATE}]))",
                "feedback {{rating}}",
            ),
            Query(
                f'sum(rate(tickerwire_feedback_total{{rating="up"}}[{RATE}])) '
                f"/ sum(rate(tickerwire_feedback_total[{RATE}]))",
                "approval ratio",
            ),
            Query(
                f"sum(rate(tickerwire_feedback_refused_rated_down_total[{RATE}]))",
                "refused + rated down",
            ),
            Query(
                f'sum(rate(tickerwire_query_log_records_total{{outcome="dropped"}}[{RATE}]))',
                "log records dropped",
            ),
        ],
        "short",
    ),
]

PROCESSES: list[Panel] = [
    Panel(
        "CPU",
        "CPU cores each tickerwire process uses.",
        [
            Query(
                f'rate(process_cpu_seconds_total{{job="tickerwire"}}[{RATE}])',
                "{{role}} {{instance}}",
            )
        ],
        "short",
    ),
    Panel(
        "Resident memory",
        "Resident set size of each process.",
        [
            Query(
                'process_resident_memory_bytes{job="tickerwire"}',
                "{{role}} {{instance}}",
            )
        ],
        "bytes",
    ),
    Panel(
        "Open file descriptors",
        "Open file descriptors of each process.",
        [Query('process_open_fds{job="tickerwire"}', "{{role}} {{instance}}")],
        "short",
    ),
    Panel(
        "Targets up",
        "1 when Prometheus scrapes the process, 0 when it is down.",
        [Query('up{job="tickerwire"}', "{{role}} {{instance}}")],
        "short",
    ),
]

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "tickerwire-ingestion": ("tickerwire · Ingestion", INGESTION),
    "tickerwire-query": ("tickerwire · Query", QUERY),
    "tickerwire-processes": ("tickerwire · Processes", PROCESSES),
}


def _targets(panel: Panel, add: Callable[[prometheus.Dataquery], Any]) -> None:
    for ref, q in zip("ABCDEFGH", panel.queries, strict=False):
        target = prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(ref)
        if panel.kind == "heatmap":
            target = target.format(PromQueryFormat.HEATMAP)
        add(target)


def _panel(panel: Panel) -> Any:
    builder: Any
    if panel.kind == "stat":
        builder = stat.Panel()
    elif panel.kind == "heatmap":
        builder = heatmap.Panel()
    else:
        builder = timeseries.Panel().fill_opacity(10).line_width(1)
    builder = (
        builder.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .height(8)
        .span(panel.width)
    )
    _targets(panel, builder.with_target)
    return builder


def build(uid: str) -> dict[str, Any]:
    """The dashboard ``uid`` as Grafana JSON (a plain dict)."""
    title, panels = DASHBOARDS[uid]
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .tags(["tickerwire", "generated"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .editable()
    )
    for panel in panels:
        builder = builder.with_panel(_panel(panel))
    data: dict[str, Any] = _drop_nulls(
        json.loads(JSONEncoder(sort_keys=True, indent=2).encode(builder.build()))
    )
    return data


def _drop_nulls(value: Any) -> Any:
    """The JSON without ``null`` object members (the SDK writes unset options as null)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def render(uid: str) -> str:
    """The file content of dashboard ``uid``: sorted keys, two-space indent, final newline."""
    return json.dumps(build(uid), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stale = []
    for uid in DASHBOARDS:
        path = OUT_DIR / f"{uid}.json"
        text = render(uid)
        if args.check:
            if not path.exists() or path.read_text("utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, "utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run deploy/grafana/dashboards.py): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
