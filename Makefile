# A small Makefile: set-up, the demo, the checks.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup browser screenshots demo serve test unit lint typecheck ops check bench bench-short bench-healthz faults faults-short

$(BIN)/inlet-bridge: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $@

setup: $(BIN)/inlet-bridge

# Debian's chromium for the console's browser tests (apt-get as root, when missing).
browser:
	bash scripts/install-browser.sh

demo: setup
	$(BIN)/inlet-bridge demo

serve: setup
	$(BIN)/inlet-bridge serve

test: setup browser
	$(BIN)/pytest -q

# Redraw the console's documented screenshots (docs/console/) with the browser tests.
screenshots: setup browser
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(BIN)/pytest -q tests/browser

# The pure core alone: no database, no event loop, a few seconds.
unit: setup
	$(BIN)/pytest -q tests/unit

lint: setup
	$(BIN)/ruff check inlet_bridge tests bench scripts
	$(BIN)/ruff format --check inlet_bridge tests bench scripts
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# Kubernetes manifests, alert rules and the dashboard (scripts/check-ops.sh).
ops: setup
	bash scripts/check-ops.sh $(VENV)

check: lint typecheck ops test

# The benchmarks (not part of CI): each prints its figures beside limits measured in the same run.
bench: setup
	$(BIN)/python -m bench.ingest --realistic
	$(BIN)/python -m bench.loop
	$(BIN)/python -m bench.growth

# The same, small: a few minutes on 2 cores.
bench-short: setup
	$(BIN)/python -m bench.ingest --realistic --no-plain --seconds 3 --warmup 1
	$(BIN)/python -m bench.loop --stays 500 --seconds 4
	$(BIN)/python -m bench.growth --short

bench-healthz: setup
	$(BIN)/python bench/healthz.py

# The fault campaign (bench/faults.py): real processes, real faults, a table of figures;
# exits non-zero if any figure that must be 0 is not. faults-short is the form CI runs.
faults: setup
	$(BIN)/python -m bench.faults

faults-short: setup
	$(BIN)/python -m bench.faults --short
