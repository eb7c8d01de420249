"""Every setting the project reads from the environment, in one typed object.

``Settings.from_env()`` reads each ``CALLMETRICS_*`` variable (README, "Where things are"):

- ``CALLMETRICS_RAW_DIR``: the raw Parquet directory, default ``<project>/data/raw``.
- ``CALLMETRICS_WAREHOUSE``: the DuckDB warehouse file (a link to the live version), default
  ``<project>/data/warehouse/callmetrics.duckdb``.
- ``CALLMETRICS_EXPORT_DIR``: where the nightly job writes payloads, default ``exports/``
  beside the warehouse.
- ``CALLMETRICS_NIGHTLY_AT``: the nightly schedule's time of day, UTC ``HH:MM`` (02:00).
- ``CALLMETRICS_PARTITIONS_START``: the first day of the export partitions (2020-01-01).
- ``CALLMETRICS_RAW_MAX_LAG_HOURS`` / ``CALLMETRICS_MART_MAX_LAG_HOURS``: the freshness checks'
  allowed lags (24 h each).
- ``CALLMETRICS_TARGET``: the engine dbt builds on, ``duckdb`` (default, embedded) or ``spark``
  (a Spark Thrift server at ``CALLMETRICS_SPARK_HOST``:``CALLMETRICS_SPARK_PORT``, default
  127.0.0.1:10000; ``callmetrics spark start`` runs a local one whose warehouse, metastore and
  log live in ``CALLMETRICS_SPARK_DIR``, default ``<project>/data/spark``, with a driver of
  ``CALLMETRICS_SPARK_MEMORY``, default 4g). README, "Spark".
- ``CALLMETRICS_DUCKDB_MEMORY_LIMIT`` (read by dbt's profile), ``CALLMETRICS_KEEP_VERSIONS`` and
  the test hook ``CALLMETRICS_FAULT_POINT`` (read by the publishing store) are listed in the
  README with the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT
RAW_DIR_ENV = "CALLMETRICS_RAW_DIR"
WAREHOUSE_ENV = "CALLMETRICS_WAREHOUSE"
EXPORT_DIR_ENV = "CALLMETRICS_EXPORT_DIR"
NIGHTLY_AT_ENV = "CALLMETRICS_NIGHTLY_AT"
PARTITIONS_START_ENV = "CALLMETRICS_PARTITIONS_START"
RAW_MAX_LAG_ENV = "CALLMETRICS_RAW_MAX_LAG_HOURS"
MART_MAX_LAG_ENV = "CALLMETRICS_MART_MAX_LAG_HOURS"
TARGET_ENV = "CALLMETRICS_TARGET"
SPARK_HOST_ENV = "CALLMETRICS_SPARK_HOST"
SPARK_PORT_ENV = "CALLMETRICS_SPARK_PORT"
SPARK_DIR_ENV = "CALLMETRICS_SPARK_DIR"
SPARK_MEMORY_ENV = "CALLMETRICS_SPARK_MEMORY"
TARGETS = ("duckdb", "spark")
DEFAULT_SPARK_PORT = 10000
DEFAULT_SPARK_DIR = PROJECT_ROOT / "data" / "spark"
DEFAULT_RAW_DIR = PROJECT_ROOT / "data" / "raw"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse" / "callmetrics.duckdb"
DEFAULT_NIGHTLY_AT = "02:00"
DEFAULT_PARTITIONS_START = "2020-01-01"
DEFAULT_MAX_LAG_HOURS = 24.0
RAW_TABLES = ("resellers", "organizations", "agents", "calls", "telemetry_events")


def _hours(environ: Mapping[str, str], name: str) -> timedelta:
    text = environ.get(name)
    try:
        return timedelta(hours=float(text) if text else DEFAULT_MAX_LAG_HOURS)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number of hours") from None


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    text = (environ.get(name) or allowed[0]).strip().lower()
    if text not in allowed:
        raise ValueError(f"{name}={text!r} is not one of {', '.join(allowed)}")
    return text


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    try:
        port = int(text) if text else default
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"{name}={text!r} is not a port number")
    return port


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    warehouse: Path
    export_dir: Path | None = None  # None: exports/ beside the warehouse
    nightly_at: str = DEFAULT_NIGHTLY_AT
    partitions_start: str = DEFAULT_PARTITIONS_START
    raw_max_lag: timedelta = timedelta(hours=DEFAULT_MAX_LAG_HOURS)
    mart_max_lag: timedelta = timedelta(hours=DEFAULT_MAX_LAG_HOURS)
    target: str = "duckdb"  # the dbt target (profiles.yml) the build runs on
    spark_host: str = "127.0.0.1"
    spark_port: int = DEFAULT_SPARK_PORT
    spark_dir: Path = DEFAULT_SPARK_DIR
    spark_memory: str = "4g"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw = env.get(RAW_DIR_ENV) or str(DEFAULT_RAW_DIR)
        wh = env.get(WAREHOUSE_ENV) or str(DEFAULT_WAREHOUSE)
        # The warehouse path is a symbolic link to the live version (docs/publishing.md): resolve
        # its folder only, never the link itself.
        warehouse = Path(wh).expanduser().absolute()
        export = env.get(EXPORT_DIR_ENV)
        return cls(
            raw_dir=Path(raw).expanduser().resolve(),
            warehouse=warehouse.parent.resolve() / warehouse.name,
            export_dir=Path(export).expanduser().resolve() if export else None,
            nightly_at=env.get(NIGHTLY_AT_ENV) or DEFAULT_NIGHTLY_AT,
            partitions_start=env.get(PARTITIONS_START_ENV) or DEFAULT_PARTITIONS_START,
            raw_max_lag=_hours(env, RAW_MAX_LAG_ENV),
            mart_max_lag=_hours(env, MART_MAX_LAG_ENV),
            target=_choice(env, TARGET_ENV, TARGETS),
            spark_host=env.get(SPARK_HOST_ENV) or "127.0.0.1",
            spark_port=_port(env, SPARK_PORT_ENV, DEFAULT_SPARK_PORT),
            spark_dir=Path(env.get(SPARK_DIR_ENV) or DEFAULT_SPARK_DIR).expanduser().absolute(),
            spark_memory=env.get(SPARK_MEMORY_ENV) or "4g",
        )

    @property
    def exports(self) -> Path:
        """Where the nightly job writes payloads."""
        return self.export_dir or self.warehouse.parent / "exports"

    def export_env(self) -> None:
        """Make the resolved paths visible to dbt and Dagster, which read the environment."""
        os.environ[RAW_DIR_ENV] = str(self.raw_dir)
        os.environ[WAREHOUSE_ENV] = str(self.warehouse)
        os.environ.setdefault("DBT_PROFILES_DIR", str(DBT_PROJECT_DIR))
        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        os.environ.setdefault("DO_NOT_TRACK", "1")


@contextmanager
def warehouse_env(path: Path) -> Iterator[None]:
    """CALLMETRICS_WAREHOUSE names `path` for the duration (dbt's profile reads it), then is
    restored as it was (unset when it was unset)."""
    saved = os.environ.get(WAREHOUSE_ENV)
    os.environ[WAREHOUSE_ENV] = str(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(WAREHOUSE_ENV, None)
        else:
            os.environ[WAREHOUSE_ENV] = saved
