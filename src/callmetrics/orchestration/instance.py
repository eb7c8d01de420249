"""The Dagster instance the commands record runs in: `$DAGSTER_HOME`, else the project's.

The project's `dagster_home/dagster.yaml` turns Dagster's telemetry off and allows one run at a
time (every run writes the same DuckDB file). `dagster dev` reads `DAGSTER_HOME` itself (the
Makefile sets it); the commands open the same instance without changing the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from callmetrics.settings import PROJECT_ROOT

DAGSTER_HOME_ENV = "DAGSTER_HOME"
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "dagster_home"


def dagster_home() -> Path:
    return Path(os.environ.get(DAGSTER_HOME_ENV) or DEFAULT_DAGSTER_HOME).absolute()


def open_instance() -> DagsterInstance:
    """The instance under `dagster_home()` (made when missing)."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.from_config(str(home))
