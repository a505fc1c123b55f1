"""What operators watch, shipped with the collection (monitoring/): the alert rules pass
`promtool check rules` and their unit tests (`promtool test rules`), and the rules and the
Grafana dashboard query only metrics the code really exports — every one of them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from shield_orchestrator.api.telemetry import ApiMetrics
from shield_orchestrator.services.index_metrics import Snapshot
from shield_orchestrator.services.metrics import WorkerMetrics

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "collections/ansible_collections/shield/orchestrator/monitoring"
METRIC = re.compile(r"\bshield_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    beside = Path(sys.executable).parent / "promtool"  # the venv's (scripts/bootstrap.sh)
    tool = str(beside) if beside.is_file() else shutil.which("promtool")
    assert tool, (
        "no promtool in the venv nor on PATH: make venv (scripts/bootstrap.sh) puts it there"
    )
    return subprocess.run(
        [tool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


def exported() -> dict[str, set[str]]:
    """Metric family -> the sample names Prometheus scrapes for it, from the real collectors."""
    families: dict[str, set[str]] = {}
    api = ApiMetrics()
    api.index.snapshot = Snapshot()  # the indexing families appear after a read of PostgreSQL
    for registry in (api.registry, WorkerMetrics(CollectorRegistry()).registry):
        for family in registry.collect():
            families[family.name] = {family.name + s for s in SUFFIXES[family.type]}
    return families


def rule_exprs() -> list[str]:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads((MONITORING / "dashboard.json").read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    doc = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())
    fired = {
        t["alertname"]
        for test in doc["tests"]
        for t in test["alert_rule_test"]
        if t.get("exp_alerts")
    }
    alerts = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    assert fired == names


@pytest.mark.parametrize("source", ["alerts.yml", "dashboard.json"])
def test_queries_name_only_exported_metrics(source: str) -> None:
    exprs = rule_exprs() if source == "alerts.yml" else dashboard_exprs()
    samples = set().union(*exported().values())
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used, f"no shield_* metric in {source}"
    assert used <= samples, f"{source} queries metrics nobody exports: {sorted(used - samples)}"


def test_the_dashboard_shows_every_exported_metric() -> None:
    used = {m for e in dashboard_exprs() for m in METRIC.findall(e)}
    missing = sorted(f for f, samples in exported().items() if not samples & used)
    assert not missing, f"metrics exported but not on the dashboard: {missing}"
