"""Do the dashboard and the alert rules read metrics the service exports, and does every alert
lead the on-call operator to a runbook section that exists?"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from inlet_bridge.metrics import Metrics
from inlet_bridge.store.gauges import ESCALATION_OPERATIONS, SEVERITIES
from tests.ops.promql import (
    PromQLSyntaxError,
    grafana_variable_query,
    metric_names,
    metric_uses,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "k8s" / "grafana-dashboard.json"
RULES = ROOT / "k8s" / "prometheus-rules.yaml"
RULES_TEST = Path(__file__).with_name("rules-test.yaml")
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
K8S_DIR = ROOT / "k8s"

# Series from elsewhere: Prometheus records `up` for every scrape target; kube-state-metrics
# exports the Deployment's ready replicas.
PROMETHEUS_SERIES = frozenset({"up", "kube_deployment_status_replicas_available"})
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


def _families() -> list[Metric]:
    return list(Metrics().registry.collect())


def exported_names() -> set[str]:
    """The series names the service's /metrics can carry (no `_created`: not a thing to graph)."""
    return {family.name + suffix for family in _families() for suffix in SUFFIXES[family.type]}


def gauges_from_postgresql() -> set[str]:
    """Gauges every replica exports with the same value (documented "(from PostgreSQL)")."""
    return {
        family.name
        for family in _families()
        if family.type == "gauge" and "(from PostgreSQL)" in family.documentation
    }


def unknown_metrics(exprs: dict[str, str], known: set[str]) -> dict[str, set[str]]:
    """Expressions (by where they come from) that read a metric nobody exports."""
    problems = {}
    for where, expr in exprs.items():
        missing = metric_names(expr) - known - PROMETHEUS_SERIES
        if missing:
            problems[where] = missing
    return problems


def summed_postgresql_gauges(exprs: dict[str, str], gauges: set[str]) -> dict[str, str]:
    """Uses of a from-PostgreSQL gauge whose innermost aggregation is not max()."""
    problems = {}
    for where, expr in exprs.items():
        for use in metric_uses(expr):
            if use.name in gauges:
                innermost = use.enclosing[-1] if use.enclosing else "(none)"
                if innermost != "max":
                    problems[where] = f"{use.name} under {innermost}()"
    return problems


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_exprs() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {}
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            exprs[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            exprs[f"variable {variable['name']}"] = grafana_variable_query(query)
    return exprs


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def rule_exprs() -> dict[str, str]:
    return {f"rule {r.get('alert') or r.get('record')}": r["expr"] for r in alert_rules()}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub (and most Markdown renderers) give the headings of a document."""
    anchors: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        base = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        anchor, n = base, 0
        while anchor in anchors:
            n += 1
            anchor = f"{base}-{n}"
        anchors.add(anchor)
    return anchors


# -- the checks themselves can fail ----------------------------------------------------------


def test_a_made_up_metric_is_reported() -> None:
    known = exported_names()
    exprs = {
        "typo": 'sum(rate(inlet_bridge_events_acepted_total{source="x"}[5m]))',
        "counter without _total": "rate(inlet_bridge_events_accepted[5m])",
        "histogram without _bucket": "inlet_bridge_ingest_seconds",
        "invented": "max by (operation) (inlet_bridge_made_up_gauge) > 0",
        "fine": "sum(rate(inlet_bridge_events_accepted_total[5m]))",
    }
    assert unknown_metrics(exprs, known) == {
        "typo": {"inlet_bridge_events_acepted_total"},
        "counter without _total": {"inlet_bridge_events_accepted"},
        "histogram without _bucket": {"inlet_bridge_ingest_seconds"},
        "invented": {"inlet_bridge_made_up_gauge"},
    }


def test_a_summed_postgresql_gauge_is_reported() -> None:
    gauges = gauges_from_postgresql()
    exprs = {
        "summed": "sum by (operation) (inlet_bridge_calls_pending)",
        "bare": "inlet_bridge_reconcile_lag_seconds > 300",
        "max then sum": "sum(max by (severity) (inlet_bridge_escalations_open))",
        "per-replica gauge": "sum(inlet_bridge_poller_lag_seconds)",
    }
    assert summed_postgresql_gauges(exprs, gauges) == {
        "summed": "inlet_bridge_calls_pending under sum()",
        "bare": "inlet_bridge_reconcile_lag_seconds under (none)()",
    }


def test_the_expression_reader() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(a_bucket{x=~"$v"}[$__rate_interval])))'
        " / on (namespace) group_left (pod) b offset 1h"
        ' or absent(up{job="x"} == 1) and sum(c) without (pod) > bool 1e3'
    ) == {"a_bucket", "b", "up", "c"}
    for bad in ("sum(a", "a)", "a ? b"):
        with pytest.raises(PromQLSyntaxError):
            metric_names(bad)


def test_the_anchor_reader() -> None:
    doc = (
        "# Operations\n## Deploy, then check!\n```\n# not a heading\n```\n### Deploy, then check\n"
    )
    assert github_anchors(doc) == {"operations", "deploy-then-check", "deploy-then-check-1"}


def test_the_service_exports_the_gauges_from_postgresql() -> None:
    # if the HELP texts changed, the max() check below would silently check nothing
    assert {"inlet_bridge_calls_pending", "inlet_bridge_escalations_open"} <= (
        gauges_from_postgresql()
    )


# -- the dashboard and the rules ---------------------------------------------------------------


def test_the_dashboard_reads_only_exported_metrics() -> None:
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    assert unknown_metrics(exprs, exported_names()) == {}


def test_the_rules_read_only_exported_metrics() -> None:
    exprs = rule_exprs()
    assert len(exprs) >= 9
    assert unknown_metrics(exprs, exported_names()) == {}


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs().values()))
    families = {f.name for f in _families()}
    shown = {f for f in families if any(name.startswith(f) for name in used)}
    assert families - shown == set()


def test_postgresql_gauges_are_aggregated_with_max() -> None:
    gauges = gauges_from_postgresql()
    assert summed_postgresql_gauges({**dashboard_exprs(), **rule_exprs()}, gauges) == {}


def test_every_alert_is_labelled_and_annotated() -> None:
    for rule in alert_rules():
        assert "alert" in rule, rule
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert all(v.strip() for v in annotations.values()), rule["alert"]


def test_every_runbook_url_points_at_a_section_of_the_operations_guide() -> None:
    anchors = github_anchors(OPERATIONS_DOC.read_text())
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page.startswith("https://"), url
        assert page.endswith("/docs/operations.md"), url
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in docs/operations.md"


def test_the_runbook_address_is_one_setting_that_kustomize_writes_into_every_rule() -> None:
    """kustomization.yaml's inlet-bridge-runbooks `base` replaces the part before "#" of every
    runbook_url (a replacement with a delimiter), so the address is set in one place."""
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    (generator,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "inlet-bridge-runbooks"
    ]
    assert generator["options"]["annotations"]["config.kubernetes.io/local-config"] == "true"
    (base,) = [v.partition("=")[2] for v in generator["literals"] if v.startswith("base=")]
    (replacement,) = kustomization["replacements"]
    assert replacement["source"] == {
        "kind": "ConfigMap",
        "name": "inlet-bridge-runbooks",
        "fieldPath": "data.base",
    }
    (target,) = replacement["targets"]
    assert target["select"] == {"kind": "PrometheusRule", "name": "inlet-bridge"}
    assert target["fieldPaths"] == ["spec.groups.*.rules.*.annotations.runbook_url"]
    assert target["options"] == {"delimiter": "#", "index": 0}
    # what the replacement would write is what the rules already hold, for every alert
    for rule in alert_rules():
        assert rule["annotations"]["runbook_url"].partition("#")[0] == base, rule["alert"]


def test_the_required_alerts_exist() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    pages = {name for name, r in rules.items() if r["labels"]["severity"] == "critical"}
    assert {"InletBridgeRevocationEscalated", "InletBridgeRevocationFailing"} <= pages
    assert 'operation="revoke"' in rules["InletBridgeRevocationEscalated"]["expr"]
    assert "inlet_bridge_escalations_open" in rules["InletBridgeRevocationEscalated"]["expr"]
    assert ">= 600" in rules["InletBridgeRevocationFailing"]["expr"]
    for name in (
        "InletBridgeEscalationOpen",
        "InletBridgeQueueAgeing",
        "InletBridgeReconcileLag",
        "InletBridgePollerStale",
        "InletBridgePollerNeverSucceeded",
        "InletBridgeIngestRejections",
        "InletBridgeInletErrors",
    ):
        assert rules[name]["labels"]["severity"] == "warning", name
    assert "absent(up" in rules["InletBridgeDown"]["expr"]


_SELECTOR = re.compile(r"inlet_bridge_escalations_open\{(?P<matchers>[^}]*)\}")
_MATCHER = re.compile(r'(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>[^"]*)"')


def selects(matchers: str, labels: dict[str, str]) -> bool:
    """Whether a PromQL label selector such as operation!="revoke" matches these labels."""
    for m in _MATCHER.finditer(matchers):
        value = labels.get(m["label"], "")
        full = re.fullmatch(m["value"], value) is not None
        ok = {
            "=": value == m["value"],
            "!=": value != m["value"],
            "=~": full,
            "!~": not full,
        }[m["op"]]
        if not ok:
            return False
    return True


def escalation_alerts_for(operation: str, severity: str) -> list[str]:
    labels = {"operation": operation, "severity": severity}
    return [
        rule["alert"]
        for rule in alert_rules()
        if any(selects(m["matchers"], labels) for m in _SELECTOR.finditer(rule["expr"]))
    ]


def test_the_selector_reader() -> None:
    assert selects('operation!="revoke"', {"operation": "webhook"})
    assert not selects('operation!="revoke"', {"operation": "revoke"})
    assert selects(
        'operation=~"web.*", severity="high"', {"operation": "webhook", "severity": "high"}
    )
    assert not selects('operation=~"web.*", severity="high"', {"operation": "webhook"})


def test_every_escalation_the_service_exports_reaches_an_alert() -> None:
    """Each kind of open escalation (write-backs that gave up included) raises exactly one alert,
    and only revocations page."""
    assert {"webhook", "spectra"} <= set(ESCALATION_OPERATIONS)
    rules = {r["alert"]: r for r in alert_rules()}
    for operation in ESCALATION_OPERATIONS:
        for severity in SEVERITIES:
            alerts = escalation_alerts_for(operation, severity)
            assert len(alerts) == 1, (operation, severity, alerts)
            paging = rules[alerts[0]]["labels"]["severity"] == "critical"
            assert paging == (operation == "revoke"), (operation, alerts)


# -- the rule unit tests ------------------------------------------------------------------------


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in alert_rules():
        name = rule["alert"]
        firing = [c for c in cases if c["alertname"] == name and c["exp_alerts"]]
        quiet = [c for c in cases if c["alertname"] == name and not c["exp_alerts"]]
        assert firing, f"{name}: no test where it fires"
        assert quiet, f"{name}: no test where it stays quiet"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_runs_the_rule_tests(tmp_path: Path) -> None:
    spec = yaml.safe_load(RULES.read_text())["spec"]
    (tmp_path / "prometheus-rules.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(RULES_TEST, tmp_path / "rules-test.yaml")
    promtool = shutil.which("promtool")
    assert promtool is not None
    for args in (
        ["check", "rules", "prometheus-rules.rules.yaml"],
        ["test", "rules", "rules-test.yaml"],
    ):
        command = [promtool, *args]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
        assert done.returncode == 0, done.stdout + done.stderr


def test_links_inside_the_operations_guide_lead_somewhere() -> None:
    text = OPERATIONS_DOC.read_text()
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links
    assert links - github_anchors(text) == set()
