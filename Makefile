# make demo  - set up and run the main job against the local emulator
# make test  - set up and run ruff, mypy and the whole test suite
# make bench - set up and run the benchmarks (writes benchmarks/results.json)
# make browser - headless Chromium for the browser tests (the distribution's packages, as root)
# make test-production - the production-shaped stack: PostgreSQL, Redis, Celery, two schedulers

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints/airflow-3.3.txt
PRODUCTION_CONSTRAINTS := constraints/production-3.3.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(CONSTRAINTS) $(PRODUCTION_CONSTRAINTS) | cksum | cut -d' ' -f1)

.PHONY: install lint browser services test test-production test-matrix test-matrix-envs demo bench screenshots clean

$(STAMP): pyproject.toml $(CONSTRAINTS) $(PRODUCTION_CONSTRAINTS)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$$(sed -n 's/^uv==//p' $(CONSTRAINTS))"
	$(BIN)/uv pip uninstall --quiet --python $(BIN)/python airflow-provider-opsgenie-heartbeat  # the former name
	$(BIN)/uv pip install --quiet --python $(BIN)/python --constraint $(CONSTRAINTS) \
		--constraint $(PRODUCTION_CONSTRAINTS) --editable '.[test,production]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The browser tests drive headless Chromium from the distribution's packages (nothing is downloaded
# when they run). Installed here when missing and run as root, as in CI; otherwise this says how,
# and those tests skip.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver; \
	else \
		echo "Headless Chromium is not installed: the browser tests will skip. To run them:"; \
		echo "  sudo apt-get install --no-install-recommends chromium chromium-driver"; \
	fi

# One pytest worker per core (pytest-xdist); a module's tests stay on one worker, so an Airflow
# stack a module starts is started once. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= auto
test: lint browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=10 -m "not production_stack"

# PostgreSQL and Redis from the distribution's packages, for the production-shaped stack. The
# tests start their own clusters in temporary folders, on 127.0.0.1, and stop them.
services:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			postgresql redis-server; \
	else \
		echo "PostgreSQL and Redis are needed: sudo apt-get install --no-install-recommends postgresql redis-server"; \
		exit 1; \
	fi

# PostgreSQL, Redis, CeleryExecutor with two workers, two schedulers, two DAG processors and an
# API server without DAG files, each its own "host" (tests/production).
test-production: install services
	$(BIN)/pytest -p no:cacheprovider -m production_stack tests/production

# The README's pictures of the Heartbeats page and the DAG tab, taken by the browser test.
screenshots: install browser
	mkdir -p docs
	HEARTBEATS_SCREENSHOTS=docs $(BIN)/pytest -q -m ui_server -k browser tests/e2e/test_heartbeats_page.py

# The Airflow version matrix: one uv environment per Airflow minor (noxfile.py), from
# constraints/airflow-<minor>.txt. MINORS picks some: make test-matrix MINORS="3.0 3.1".
# NOX_FLAGS=-R reuses the environments without installing (after make test-matrix-envs).
MINORS ?= $(sort $(patsubst constraints/airflow-%.txt,%,$(wildcard constraints/airflow-*.txt)))
test-matrix: install
	$(BIN)/nox $(NOX_FLAGS) --sessions $(foreach m,$(MINORS),"tests(airflow='$(m)')") -- $(PYTEST_ARGS)

test-matrix-envs: install
	$(BIN)/nox --install-only --sessions $(foreach m,$(MINORS),"tests(airflow='$(m)')")

demo: install
	$(BIN)/python scripts/demo.py

# The official OpsGenie provider is a baseline of the import benchmark: it is installed in
# the benchmark's own environment only, never next to the tests.
BENCH_VENV := benchmarks/.venv-bench
bench:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet --constraint $(CONSTRAINTS) --editable . \
		apache-airflow-providers-opsgenie time-machine
	$(BENCH_VENV)/bin/python benchmarks/run.py
	# The figures of the production-shaped stack (requests per run across hosts, the page of 1,000
	# heartbeats without DAG files): measured by its tests, written to benchmarks/production-stack.json.
	BENCH_PRODUCTION_OUT=benchmarks/production-stack.json $(MAKE) test-production

clean:
	rm -rf $(VENV) $(BENCH_VENV) .nox .demo .pytest_cache .mypy_cache .ruff_cache
