# The two front-door commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DBT_PROFILES_DIR ?= $(CURDIR)
export CALLMETRICS_RAW_DIR ?= $(CURDIR)/data/raw
export CALLMETRICS_WAREHOUSE ?= $(CURDIR)/data/warehouse/callmetrics.duckdb
export DBT_SEND_ANONYMOUS_USAGE_STATS = false
export DO_NOT_TRACK = 1

.PHONY: install install-test java demo test lint dagster docs screenshot bench bench-10m bench-api clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bi,spark]'
	$(BIN)/python -m callmetrics.spark.hive_jars >/dev/null
	@if [ -f scripts/setup_compat_duckdb.sh ]; then bash scripts/setup_compat_duckdb.sh; fi

demo: install
	$(BIN)/callmetrics demo

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint models tests/dbt snapshots --processes 2

test: install-test lint java
	$(BIN)/dbt parse --quiet
	$(BIN)/dagster definitions validate
	$(BIN)/pytest -n 2 --dist loadfile --durations=20

# The Spark tests (tests/test_spark*.py) run a local Spark, which needs Java 17.
java:
	@command -v java >/dev/null || { echo "Spark needs Java 17: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }

dagster: install
	$(BIN)/dagster dev

# dbt docs of the published warehouse, catalog included, read through the `published` target
# (a read-only attach: never locks the warehouse, runs beside readers and the nightly build);
# its own target path keeps the nightly build's parse cache untouched.
DOCS_PORT ?= 8080
DOCS_TARGET = target/docs
docs: install
	$(BIN)/dbt docs generate --target published --target-path $(DOCS_TARGET)
	$(BIN)/dbt docs serve --target published --target-path $(DOCS_TARGET) --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

# Screenshots of the Dagster UI (docs/images/); Chromium comes from Debian, nothing is downloaded.
screenshot: install
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		apt-get install -y --no-install-recommends chromium chromium-driver
	$(BIN)/python scripts/screenshot_dagster.py

bench: install-test
	$(BIN)/python -m callmetrics.bench --calls 1000000 --memory-limit 3GB

bench-10m: install-test
	$(BIN)/python -m callmetrics.bench --calls 10000000 --memory-limit 10GB --naive-runs 1 --all-orgs-runs 3

# The API under load (bench/api_load.py): 16 clients, one organization x 30 days, 30 s.
bench-api: install-test
	$(BIN)/python bench/api_load.py --warehouse $(CALLMETRICS_WAREHOUSE) --out bench/results/api-load

clean:
	rm -rf target logs .pytest_cache .ruff_cache
