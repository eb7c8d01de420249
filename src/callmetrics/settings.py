"""Where things live: the project root, the raw directory and the warehouse file.

Every command reads the same two environment variables (``../shared/spec/interfaces.md``):

- ``CALLMETRICS_RAW_DIR``: the raw Parquet directory, default ``<project>/data/raw``.
- ``CALLMETRICS_WAREHOUSE``: the DuckDB warehouse file, default
  ``<project>/data/warehouse/callmetrics.duckdb``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT
RAW_DIR_ENV = "CALLMETRICS_RAW_DIR"
WAREHOUSE_ENV = "CALLMETRICS_WAREHOUSE"
DEFAULT_RAW_DIR = PROJECT_ROOT / "data" / "raw"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse" / "callmetrics.duckdb"
RAW_TABLES = ("resellers", "organizations", "agents", "calls", "telemetry_events")


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    warehouse: Path

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get(RAW_DIR_ENV) or str(DEFAULT_RAW_DIR)
        wh = os.environ.get(WAREHOUSE_ENV) or str(DEFAULT_WAREHOUSE)
        # The warehouse path is a symbolic link to the live version (docs/publishing.md): resolve
        # its folder only, never the link itself.
        warehouse = Path(wh).expanduser().absolute()
        return cls(
            raw_dir=Path(raw).expanduser().resolve(),
            warehouse=warehouse.parent.resolve() / warehouse.name,
        )

    def export_env(self) -> None:
        """Make the resolved paths visible to dbt and Dagster, which read the environment."""
        os.environ[RAW_DIR_ENV] = str(self.raw_dir)
        os.environ[WAREHOUSE_ENV] = str(self.warehouse)
        os.environ.setdefault("DBT_PROFILES_DIR", str(DBT_PROJECT_DIR))
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        os.environ.setdefault("DO_NOT_TRACK", "1")
