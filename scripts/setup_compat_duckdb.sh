#!/usr/bin/env bash
# A second virtual environment with DuckDB 1.4, the oldest DuckDB the published warehouse must
# open in (BI drivers often bundle an older DuckDB). tests/test_publish_compat.py opens the
# published file with it. Idempotent: does nothing when the environment is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CALLMETRICS_COMPAT_VENV:-.venv-duckdb14}"
PYTHON="${PYTHON:-python3}"
check='import duckdb, sys; sys.exit(0 if duckdb.__version__.startswith("1.4.") else 1)'
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
    exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'duckdb>=1.4,<1.5'
"$VENV/bin/python" -c "$check"
echo "DuckDB $("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)') in $VENV"
