# A small Makefile: set-up, the demo, the checks.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo serve test lint typecheck check bench bench-short bench-healthz

$(BIN)/inlet-bridge: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $@

setup: $(BIN)/inlet-bridge

demo: setup
	$(BIN)/inlet-bridge demo

serve: setup
	$(BIN)/inlet-bridge serve

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check service tests bench scripts
	$(BIN)/ruff format --check service tests bench scripts

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

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
