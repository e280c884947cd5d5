"""Which alerts would a replica's /metrics raise? The real rules, evaluated by promtool.

The scraped samples are held at their values for a while (counters flat, so no rate), with
`namespace` and `pod` added as the ServiceMonitor adds them and `up` = 1 for the replica; then
promtool evaluates k8s/prometheus-rules.yaml over them and compares the firing alerts with the
ones expected.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s" / "prometheus-rules.yaml"
NAMESPACE = "hotels"
POD = "inlet-bridge-a"
# The labels a firing alert is told apart by (absent ones are left out by count by).
ALERT_LABELS = ("alertname", "operation", "connection", "property", "severity")

Sample = tuple[str, dict[str, str], float]


def samples(exposition: str) -> list[Sample]:
    """Every sample of a /metrics text, without the `_created` timestamps."""
    found = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name.endswith("_created") or math.isnan(sample.value):
                continue
            found.append((sample.name, dict(sample.labels), float(sample.value)))
    return found


def _series(name: str, labels: dict[str, str]) -> str:
    every = {**labels, "namespace": NAMESPACE, "pod": POD}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(every.items()))
    return f"{name}{{{inner}}}"


def promtool_available() -> bool:
    return shutil.which("promtool") is not None


def firing_problems(
    scraped: Iterable[Sample],
    *,
    minutes: int,
    expected: Iterable[dict[str, str]],
    folder: Path,
) -> str | None:
    """None when, after `minutes` of these values, exactly the `expected` alerts fire (each
    given by the ALERT_LABELS it carries); otherwise promtool's account of the difference."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed"
    held = f"{minutes + 1}"
    series = [
        {"series": _series(name, labels), "values": f"{value!r}x{held}"}
        for name, labels, value in scraped
    ]
    series.append(
        {
            "series": _series("up", {"job": "inlet-bridge", "instance": "10.0.0.1:8080"}),
            "values": f"1x{held}",
        }
    )
    series.append(
        {
            "series": _series(
                "kube_deployment_status_replicas_available", {"deployment": "inlet-bridge"}
            ),
            "values": f"1x{held}",
        }
    )
    query = f'count by ({", ".join(ALERT_LABELS)}) (ALERTS{{alertstate="firing"}})'
    exp_samples = [
        {
            "labels": "{" + ",".join(f'{k}="{v}"' for k, v in sorted(alert.items())) + "}",
            "value": 1,
        }
        for alert in expected
    ]
    test = {
        "rule_files": ["prometheus-rules.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": query, "eval_time": f"{minutes}m", "exp_samples": exp_samples}
                ],
            }
        ],
    }
    spec = yaml.safe_load(RULES.read_text())["spec"]
    (folder / "prometheus-rules.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "scraped-test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(  # noqa: S603 - promtool from PATH, arguments of our own
        [promtool, "test", "rules", "scraped-test.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else done.stdout + done.stderr
