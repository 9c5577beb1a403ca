# Everything CI runs is a target here; `make test` and `make demo` set the project up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint format bench clean deploy-tools stack

# Python's default: a module compiles once and later processes read its bytecode. A shell
# that sets PYTHONDONTWRITEBYTECODE makes every process recompile every module it imports
# (the suite starts hundreds of them, and Airflow's tasks import Airflow afresh each time).
unexport PYTHONDONTWRITEBYTECODE

install: $(STAMP)

# Apache Airflow lives in .venv-airflow (its pins conflict with ours); `make test` runs the
# DAG tests with it.
include airflow.mk

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fraudops demo

# Tests run in parallel (pytest-xdist): four workers keep two cores busy, since many tests
# wait on the processes they start (measured: 6:27 with four, 6:47 with three); worksteal
# rebalances the short tests around the long ones, which head the workers' shares
# (tests/conftest.py). TEST_WORKERS=0 runs them in one process. The 20 slowest are listed at
# the end, so that every run (CI's too) shows where the time goes. The unit tests alone are
# CPU-bound: three workers (UNIT_WORKERS).
TEST_WORKERS ?= 4
UNIT_WORKERS ?= 3

test: $(STAMP) $(AIRFLOW_STAMP) browser deploy-tools
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

# The browser tests (tests/browser) drive the system's Chromium through Playwright, which
# cannot download its own browser here: Debian's package, installed when it is missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: browser
browser:
	test -x $(CHROMIUM) || ($(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium)

# nginx and Prometheus (with promtool) from Debian's packages, for the deployment tests and
# `make stack`; nothing to do when they are installed. As root, or through sudo.
deploy-tools:
	@if { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null && \
		command -v prometheus >/dev/null && command -v promtool >/dev/null; then :; else \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$(SUDO) apt-get install -y -qq --no-install-recommends nginx prometheus; fi

# The production topology of deploy/compose.yaml as local processes, no containers (see
# README, "Deploy"): PostgreSQL and Redis must be running; Ctrl-C stops it.
stack: $(STAMP) deploy-tools
	$(BIN)/python deploy/local_stack.py

# The unit tests only, for the inner loop.
test-fast: $(STAMP)
	$(BIN)/pytest -n $(UNIT_WORKERS) --dist worksteal tests/unit

# ruff check without its cache: whether an import is first-party depends on which files
# exist, which the cache does not see (a module moved between folders passed here and failed
# in a fresh clone).
lint: $(STAMP)
	$(BIN)/ruff check --no-cache src tests benchmarks dags deploy
	$(BIN)/ruff format --check src tests benchmarks dags deploy
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks dags deploy
	$(BIN)/ruff format src tests benchmarks dags deploy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_backtest.py
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_kernel_load.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_redis_state.py
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/fill_warehouse.py
	$(BIN)/python benchmarks/explain_console.py
	$(BIN)/python benchmarks/bench_console.py

# Re-pin every dependency after changing pyproject.toml.
.PHONY: lock
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o constraints.txt

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .fraudops .pytest_cache .mypy_cache .ruff_cache
