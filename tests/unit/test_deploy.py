"""The deployment files: generated dashboards, Prometheus config and rules (promtool), and the
compose file (every service's command is a real CLI command, every mounted file exists)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main
import yaml

from tickerwire.cli import app
from tickerwire.core.metrics import catalogue

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARD_DIR = REPO / "deploy" / "grafana" / "dashboards"

#: Query metrics that branch `ask` defines (names pinned in the interfaces); the dashboards use
#: them already. Remove a name here once core/metrics.py defines it.
PENDING_METRICS: set[str] = set()


def load_dashboards_module() -> ModuleType:
    path = REPO / "deploy" / "grafana" / "dashboards.py"
    spec = importlib.util.spec_from_file_location("tickerwire_dashboards", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dashboard_expressions() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, PromQL, legend format) of every query of every dashboard."""
    out = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], target["expr"], target["legendFormat"]))
    return out


def alert_expressions() -> list[tuple[str, str]]:
    """(rule name, PromQL) of every recording and alerting rule."""
    data = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text("utf-8"))
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for group in data["groups"]
        for rule in group["rules"]
    ]


# --- Grafana ------------------------------------------------------------------------------------


def test_regenerating_the_dashboards_gives_the_committed_files() -> None:
    module = load_dashboards_module()
    committed = {p.stem for p in DASHBOARD_DIR.glob("*.json")}
    assert committed == set(module.DASHBOARDS)
    for uid in module.DASHBOARDS:
        text = (DASHBOARD_DIR / f"{uid}.json").read_text("utf-8")
        assert text == module.render(uid), (
            f"{uid}.json is stale: run .venv/bin/python deploy/grafana/dashboards.py"
        )


def test_dashboards_query_only_metrics_that_exist() -> None:
    known = {name for name, _, _, _ in catalogue()} | PENDING_METRICS
    exprs = [e for _, _, e, _ in dashboard_expressions()] + [e for _, e in alert_expressions()]
    for expr in exprs:
        for name in re.findall(r"\b(tickerwire_[a-z_]+?)(?:_bucket|_sum|_count)?\b", expr):
            assert name in known, f"{name} (in {expr!r}) is not a tickerwire metric"


def test_dashboards_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )
    uid = provisioned["datasources"][0]["uid"]
    for path in DASHBOARD_DIR.glob("*.json"):
        for panel in json.loads(path.read_text("utf-8"))["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, path.name


# --- Prometheus (promtool from Debian's prometheus package) -------------------------------------


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; .ci/run does)")
    return subprocess.run(
        [exe, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-allinone.yml"])
def test_promtool_check_config(config: str) -> None:
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_cover_every_alert() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = yaml.safe_load((PROMETHEUS_DIR / "alerts.test.yml").read_text("utf-8"))
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {name for name, _ in alert_expressions() if not name.startswith("tickerwire:")}
    assert alerts <= fired, f"alerts without a firing unit test: {sorted(alerts - fired)}"


def test_every_alert_has_summary_description_and_runbook() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    data = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text("utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            assert f"**{rule['alert']}**" in readme, f"no runbook for {rule['alert']}"


# --- docker compose -----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text("utf-8"))
    return data


def test_docker_compose_config_is_valid() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's)")
    for args in ([], ["--profile", "demo"]):
        result = subprocess.run(
            [exe, *args, "config", "-q"], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr


def _resolve(root: Any, argv: list[str]) -> str:
    """Parse ``argv`` as the CLI would, without running anything; returns the command path.

    Raises the CLI's usage error when a command does not exist or its arguments do not parse.
    """
    ctx = root.make_context("tickerwire", list(argv), resilient_parsing=False)
    command, args, path = root, _rest(ctx), ["tickerwire"]
    while hasattr(command, "resolve_command"):
        name, command, args = command.resolve_command(ctx, args)
        path.append(name)
        ctx = command.make_context(name, list(args), parent=ctx)
        args = _rest(ctx)
    return " ".join(path)


def _rest(ctx: Any) -> list[str]:
    """The arguments a group's context leaves for its subcommand (click's protected args)."""
    protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
    return [*protected, *ctx.args]


def test_resolving_rejects_unknown_commands_and_bad_arguments() -> None:
    cli = typer.main.get_command(app)
    assert _resolve(cli, ["worker", "embed"]) == "tickerwire worker"
    for bad in (["workers", "embed"], ["worker", "embedd"], ["topics", "make"]):
        with pytest.raises(Exception, match=r"No such command|is not one of"):
            _resolve(cli, bad)


def test_every_compose_command_is_a_cli_command() -> None:
    cli = typer.main.get_command(app)
    services = compose()["services"]
    ours = {n: s for n, s in services.items() if s.get("image") == "tickerwire:latest"}
    assert {"topics", "preprocess", "embed", "index", "query", "demo"} <= ours.keys()
    for name, service in ours.items():
        argv = service["command"]
        try:
            _resolve(cli, argv)
        except Exception as exc:  # the CLI's usage error names what is wrong
            pytest.fail(f"service {name}: `tickerwire {' '.join(argv)}` does not parse: {exc}")


def test_every_long_running_service_has_a_healthcheck_and_waits_healthy() -> None:
    services = compose()["services"]
    one_shot = {n for n, s in services.items() if s.get("restart") == "no"}
    for name, service in services.items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dep, cond in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dep in one_shot else "service_healthy"
            assert cond["condition"] == expected, f"{name} -> {dep}: {cond}"


def test_every_mounted_file_exists() -> None:
    mounts = 0
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                mounts += 1
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    assert mounts >= 5
    # the sample feed the demo profile produces is copied into the image
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text("utf-8")
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for part in src.split():
            assert (REPO / part).exists(), f"Dockerfile copies missing {part}"
