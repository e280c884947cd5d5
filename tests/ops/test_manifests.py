"""Do the image and the Kubernetes manifests fit the service and each other?

Schemas are checked by scripts/check-ops.sh (kubernetes-validate); here: what a schema cannot
see, such as selectors that match, a shutdown budget that adds up, variables the service reads,
and a properties file the service accepts.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import inlet_bridge
from inlet_bridge.domain.secret import Secret
from inlet_bridge.properties import load_properties
from inlet_bridge.settings import Settings
from inlet_bridge.store import queries

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def one(name: str, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in load(name) if d["kind"] == kind]
    return doc


def deployment() -> dict[str, Any]:
    return one("deployment.yaml", "Deployment")


def job() -> dict[str, Any]:
    return one("migrate-job.yaml", "Job")


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (c,) = workload["spec"]["template"]["spec"]["containers"]
    return c


def env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def secret_example(name: str) -> dict[str, str]:
    (doc,) = [
        d
        for d in load("secret.example.yaml")
        if d["kind"] == "Secret" and d["metadata"]["name"] == name
    ]
    return dict(doc["stringData"])


def properties_toml() -> str:
    return one("configmap.yaml", "ConfigMap")["data"]["properties.toml"]


def env_references(value: Any) -> Iterator[str]:
    """Every NAME of a { env = "NAME" } secret reference in the parsed TOML."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            yield value["env"]
        for item in value.values():
            yield from env_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from env_references(item)


class _Recording(Mapping[str, str]):
    """An environment that remembers every variable the reader asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def variables_read_by_settings() -> set[str]:
    environ = _Recording({})
    Settings.from_env(environ)
    assert {"DATABASE_URL", "PORT", "SHUTDOWN_TIMEOUT_SECONDS"} <= environ.asked
    return environ.asked


# -- kustomization ------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_examples() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {
        p.name
        for p in K8S.glob("*.yaml")
        if p.name != "kustomization.yaml" and not p.name.endswith(".example.yaml")
    }
    assert set(kustomization["resources"]) == manifests
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator.get("files", []):
            assert (K8S / file).is_file(), file
    for doc in (d for p in sorted(K8S.glob("*.yaml")) for d in load(p.name)):
        assert "namespace" not in doc.get("metadata", {}), "manifests stay namespace-agnostic"


# -- the Deployment -----------------------------------------------------------------------------


def test_deployment_runs_two_replicas_with_the_three_probes() -> None:
    d = deployment()
    c = container(d)
    assert d["spec"]["replicas"] == 2
    assert c["args"] == ["serve"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": int(env(c)["PORT"]["value"])}
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in c["resources"]["limits"]


def test_the_shutdown_budget_adds_up() -> None:
    d = deployment()
    c = container(d)
    grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    shutdown = float(env(c)["SHUTDOWN_TIMEOUT_SECONDS"]["value"])
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert grace == 30
    assert shutdown == 20
    assert 0 < pre_stop <= 10
    assert pre_stop + shutdown < grace, "SIGKILL would cut the graceful shutdown short"


def test_deployment_and_job_run_unprivileged_on_a_read_only_root() -> None:
    for workload in (deployment(), job()):
        pod = workload["spec"]["template"]["spec"]
        c = container(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_deployment_environment() -> None:
    c = container(deployment())
    variables = env(c)
    assert variables["MIGRATE_ON_START"]["value"] == "false"
    assert variables["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    for name in ("DATABASE_URL", "ADMIN_TOKEN", "LOG_MASK_KEY"):
        ref = variables[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "inlet-bridge"
        assert ref["key"] == name
        assert name in secret_example("inlet-bridge")
    assert [e["secretRef"]["name"] for e in c["envFrom"]] == ["inlet-bridge-credentials"]


def test_every_variable_set_is_one_the_service_reads() -> None:
    read = variables_read_by_settings()
    for workload in (deployment(), job()):
        assert set(env(container(workload))) - read == set()


def test_the_deployment_settings_are_accepted(tmp_path: Path) -> None:
    """Settings.from_env with the Deployment's values, the ConfigMap's file and the Secrets."""
    c = container(deployment())
    (tmp_path / "properties.toml").write_text(properties_toml())
    environ = {name: e["value"] for name, e in env(c).items() if "value" in e}
    mount = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}["properties"]
    assert environ["PROPERTIES_FILE"] == f"{mount}/properties.toml"
    environ["PROPERTIES_FILE"] = str(tmp_path / "properties.toml")
    environ["INSTANCE_ID"] = "inlet-bridge-7c9f-abcde"
    environ |= secret_example("inlet-bridge") | secret_example("inlet-bridge-credentials")
    settings = Settings.from_env(environ)
    assert settings.migrate_on_start is False
    assert settings.shutdown_timeout_seconds == 20
    assert settings.port == 8080
    assert settings.hotels is not None
    assert settings.hotels.properties
    # every replica reads the one key from the Secret: their tags agree
    assert settings.log_mask_key == Secret(secret_example("inlet-bridge")["LOG_MASK_KEY"])


# -- the properties file and the Secrets ----------------------------------------------------------


def test_the_properties_file_is_accepted_and_its_secrets_come_from_the_secret(
    tmp_path: Path,
) -> None:
    text = properties_toml()
    referenced = set(env_references(tomllib.loads(text)))
    credentials = secret_example("inlet-bridge-credentials")
    assert referenced == set(credentials), "properties.toml and the credentials Secret disagree"
    path = tmp_path / "properties.toml"
    path.write_text(text)
    hotels = load_properties(path, credentials)
    assert hotels.properties
    assert hotels.sources
    for prop in hotels.properties.values():
        assert prop.inlet_api_key.reveal().startswith("CHANGE-ME")


def test_a_missing_credential_stops_start_up_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "properties.toml"
    path.write_text(properties_toml())
    credentials = secret_example("inlet-bridge-credentials")
    del credentials["INLET_API_KEY_DEMO_OSLO_1"]
    with pytest.raises(Exception, match="INLET_API_KEY_DEMO_OSLO_1"):
        load_properties(path, credentials)


def test_secret_example_holds_only_placeholders() -> None:
    for doc in load("secret.example.yaml"):
        for key, value in doc["stringData"].items():
            assert "CHANGE-ME" in value, key
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{key} is not a variable name"


# -- the migration Job ----------------------------------------------------------------------------


def test_the_job_migrates_with_the_same_image() -> None:
    j = job()
    c = container(j)
    assert c["args"] == ["migrate"]
    assert c["image"] == container(deployment())["image"]
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert env(c)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "inlet-bridge"
    assert "PROPERTIES_FILE" not in env(c)


# -- Service, PDB, ServiceMonitor, NetworkPolicy --------------------------------------------------


def test_the_selectors_find_the_right_pods() -> None:
    server = deployment()["spec"]["template"]["metadata"]["labels"]
    migrate = job()["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment()["spec"]["selector"]["matchLabels"], server)

    svc = one("service.yaml", "Service")
    assert selects(svc["spec"]["selector"], server)
    assert not selects(svc["spec"]["selector"], migrate)
    (port,) = svc["spec"]["ports"]
    assert port["name"] == "http"
    assert port["targetPort"] == "http"

    pdb = one("pdb.yaml", "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], server)
    assert not selects(pdb["spec"]["selector"]["matchLabels"], migrate)

    monitor = one("servicemonitor.yaml", "ServiceMonitor")
    assert selects(monitor["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"

    policy = one("networkpolicy.yaml", "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], server)
    assert selects(policy["spec"]["podSelector"]["matchLabels"], migrate)


def test_the_network_policy_opens_only_what_is_needed() -> None:
    spec = one("networkpolicy.yaml", "NetworkPolicy")["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
    assert ingress_ports == {8080}
    egress = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert egress == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")}


def test_the_prometheus_rule_is_well_formed() -> None:
    doc = one("prometheus-rules.yaml", "PrometheusRule")
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    allowed = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    names = []
    for group in doc["spec"]["groups"]:
        assert group["name"]
        assert group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= allowed, rule
            assert {"alert", "expr"} <= set(rule), rule
            assert all(isinstance(v, str) for v in rule["labels"].values())
            names.append(rule["alert"])
    assert len(names) == len(set(names))


# -- the image --------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_the_image_is_multi_stage_and_runs_unprivileged() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    final = stages[-1]
    assert final[0].startswith("FROM ${PYTHON_IMAGE}")
    assert 'ENTRYPOINT ["inlet-bridge"]' in final
    assert 'CMD ["serve"]' in final
    assert "EXPOSE 8080" in final
    (user,) = [line for line in final if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    (health,) = [line for line in final if line.startswith("HEALTHCHECK ")]
    assert "/healthz" in health
    assert '"python"' in health
    # no compilers or package installs in the final stage: it only copies the build's results
    assert not [line for line in final if re.match(r"RUN .*(pip install|apt-get|apk )", line)]
    copies = [line for line in final if line.startswith("COPY ")]
    assert copies == ["COPY --from=build /opt/venv /opt/venv"]
    build = "\n".join(stages[0])
    assert "COPY inlet_bridge/ inlet_bridge/" in build
    # the wheel, not an editable install: the image runs what `pip install .` gives
    assert "pip wheel" in build
    assert "--editable" not in build


def test_the_service_reads_its_sql_from_its_own_package() -> None:
    assert Path(inlet_bridge.__file__).resolve().parent / "sql" == queries.SQL_DIR
    assert (queries.SQL_DIR / "queries.sql").is_file()


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    for needed in ("pyproject.toml", "README.md", "inlet_bridge/"):
        assert f"!{needed}" in lines, needed
