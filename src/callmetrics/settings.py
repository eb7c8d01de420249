"""Every ``CALLMETRICS_*`` variable the project reads, in one typed, validated object.

``Settings.from_env()`` is the one place that reads them (README, "Settings"); everything else
receives a ``Settings`` (or the one value it needs) as an argument. A bad value is refused
with one line naming the variable and what to write instead (``SettingsError``).

A setting is one field below: its type, its default, and in its metadata the variable's name,
how its text is read and one line for the README. Adding a setting is adding a field.

dbt is the one reader outside Python: ``Settings.dbt_vars`` builds the ``--vars`` of a dbt
call (the warehouse file it writes, the raw directory, DuckDB's memory limit), which
``profiles.yml`` and the raw sources read, falling back to the same variables when dbt is run
by hand.

This module is the bottom layer of the package: it imports nothing from ``callmetrics`` but
``callmetrics.errors``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from callmetrics.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT
DATA_DIR = PROJECT_ROOT / "data"
RAW_TABLES = ("resellers", "organizations", "agents", "calls", "telemetry_events")

RAW_DIR_ENV = "CALLMETRICS_RAW_DIR"
WAREHOUSE_ENV = "CALLMETRICS_WAREHOUSE"
EXPORT_DIR_ENV = "CALLMETRICS_EXPORT_DIR"
NIGHTLY_AT_ENV = "CALLMETRICS_NIGHTLY_AT"
PARTITIONS_START_ENV = "CALLMETRICS_PARTITIONS_START"
RAW_MAX_LAG_ENV = "CALLMETRICS_RAW_MAX_LAG_HOURS"
MART_MAX_LAG_ENV = "CALLMETRICS_MART_MAX_LAG_HOURS"
DUCKDB_MEMORY_LIMIT_ENV = "CALLMETRICS_DUCKDB_MEMORY_LIMIT"
KEEP_VERSIONS_ENV = "CALLMETRICS_KEEP_VERSIONS"
FAULT_POINT_ENV = "CALLMETRICS_FAULT_POINT"
KEYS_ENV = "CALLMETRICS_KEYS"
API_POOL_SIZE_ENV = "CALLMETRICS_API_POOL_SIZE"
API_CACHE_MB_ENV = "CALLMETRICS_API_CACHE_MB"
POSTGRES_URL_ENV = "CALLMETRICS_POSTGRES_URL"
POSTGRES_DIR_ENV = "CALLMETRICS_POSTGRES_DIR"
POSTGRES_PORT_ENV = "CALLMETRICS_POSTGRES_PORT"
POSTGRES_BIN_ENV = "CALLMETRICS_POSTGRES_BIN"
POSTGRES_SWITCH_WAIT_ENV = "CALLMETRICS_POSTGRES_SWITCH_WAIT"
TARGET_ENV = "CALLMETRICS_TARGET"
SPARK_HOST_ENV = "CALLMETRICS_SPARK_HOST"
SPARK_PORT_ENV = "CALLMETRICS_SPARK_PORT"
SPARK_SCHEMA_ENV = "CALLMETRICS_SPARK_SCHEMA"
SPARK_DIR_ENV = "CALLMETRICS_SPARK_DIR"
SPARK_MEMORY_ENV = "CALLMETRICS_SPARK_MEMORY"

DEFAULT_RAW_DIR = DATA_DIR / "raw"
DEFAULT_WAREHOUSE = DATA_DIR / "warehouse" / "callmetrics.duckdb"
DEFAULT_NIGHTLY_AT = "02:00"
DEFAULT_PARTITIONS_START = "2020-01-01"
DEFAULT_MAX_LAG_HOURS = 24.0
DEFAULT_KEEP_VERSIONS = 3
DEFAULT_KEYS = DATA_DIR / "api-keys.json"
DEFAULT_API_POOL_SIZE = 4
DEFAULT_API_CACHE_MB = 64
DEFAULT_POSTGRES_DIR = DATA_DIR / "postgres"
DEFAULT_POSTGRES_PORT = 54329
DEFAULT_POSTGRES_SWITCH_WAIT = 300.0
DEFAULT_DUCKDB_MEMORY_LIMIT = "8GB"
TARGETS = ("duckdb", "spark")
DEFAULT_SPARK_PORT = 10000
DEFAULT_SPARK_DIR = DATA_DIR / "spark"


class SettingsError(UserError):
    """A variable with a value the project cannot use: one line, naming it."""


# ------------------------------------------------------------------ reading one value


def _dir(text: str) -> Path:
    return Path(text).expanduser().resolve()


def _link(text: str) -> Path:
    # The warehouse path is a symbolic link to the live version (docs/publishing.md): resolve
    # its folder only, never the link itself.
    path = Path(text).expanduser().absolute()
    return path.parent.resolve() / path.name


def _file(text: str) -> Path:
    return Path(text).expanduser().absolute()


def _text(text: str) -> str:
    return text.strip()


def _time_of_day(text: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError("is not a time of day: write HH:MM (UTC)")
    return time(int(match[1]), int(match[2]))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("is not a date: write YYYY-MM-DD") from None


def _hours(text: str) -> timedelta:
    try:
        hours = float(text)
    except ValueError:
        raise ValueError("is not a number of hours") from None
    if not hours >= 0:
        raise ValueError("is not a number of hours (0 or more)")
    return timedelta(hours=hours)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError("is not a number of seconds") from None
    if not seconds >= 0:
        raise ValueError("is not a number of seconds (0 or more)")
    return seconds


def _whole(least: int, most: int | None = None) -> Callable[[str], int]:
    def read(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if number < least or (most is not None and number > most):
            upper = f" and at most {most}" if most is not None else ""
            raise ValueError(f"must be {least} or more{upper}")
        return number

    return read


def _memory(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B|%)", value, flags=re.IGNORECASE):
        raise ValueError("is not an amount of memory: write e.g. 8GB or 512MB")
    return value


def _target(text: str) -> str:
    value = text.strip().lower()
    if value not in TARGETS:
        raise ValueError(f"is not a dbt target: write {' or '.join(TARGETS)}")
    return value


def _java_memory(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"\d+[kmgt]?", value):
        raise ValueError("is not a Java heap size: write e.g. 4g or 512m")
    return value


def setting(env: str, read: Callable[[str], Any], default: Any, doc: str) -> Any:
    """A field read from the variable `env` by `read` (ValueError: refused), else `default`."""
    return field(default=default, metadata={"env": env, "read": read, "doc": doc})


# ------------------------------------------------------------------------- the object


@dataclass(frozen=True)
class Settings:
    """The project's settings; `from_env()` reads them, tests build them directly."""

    raw_dir: Path = setting(
        RAW_DIR_ENV, _dir, DEFAULT_RAW_DIR, "the raw Parquet directory (raw-sources.md)"
    )
    warehouse: Path = setting(
        WAREHOUSE_ENV, _link, DEFAULT_WAREHOUSE,
        "the DuckDB warehouse file readers open (a link to the live version)",
    )  # fmt: skip
    export_dir: Path | None = setting(
        EXPORT_DIR_ENV, _dir, None,
        "where the nightly job writes payloads (default: `exports/` beside the warehouse)",
    )  # fmt: skip
    nightly_at: time = setting(
        NIGHTLY_AT_ENV, _time_of_day, _time_of_day(DEFAULT_NIGHTLY_AT),
        "the nightly schedule's time of day, UTC HH:MM",
    )  # fmt: skip
    partitions_start: date = setting(
        PARTITIONS_START_ENV, _day, _day(DEFAULT_PARTITIONS_START),
        "the first day of the export partitions, YYYY-MM-DD",
    )  # fmt: skip
    raw_max_lag: timedelta = setting(
        RAW_MAX_LAG_ENV, _hours, timedelta(hours=DEFAULT_MAX_LAG_HOURS),
        "hours the newest raw call may lag the end of the run's day (freshness check)",
    )  # fmt: skip
    mart_max_lag: timedelta = setting(
        MART_MAX_LAG_ENV, _hours, timedelta(hours=DEFAULT_MAX_LAG_HOURS),
        "hours the newest mart bucket may lag the start of the run's day (freshness check)",
    )  # fmt: skip
    duckdb_memory_limit: str = setting(
        DUCKDB_MEMORY_LIMIT_ENV, _memory, DEFAULT_DUCKDB_MEMORY_LIMIT,
        "DuckDB's memory limit during the dbt build",
    )  # fmt: skip
    keep_versions: int = setting(
        KEEP_VERSIONS_ENV, _whole(2), DEFAULT_KEEP_VERSIONS,
        "published warehouse versions kept (the live one and those rollback can return to)",
    )  # fmt: skip
    fault_point: str | None = setting(
        FAULT_POINT_ENV, _text, None,
        "test hook: the named point of a build or publish kills its process (tests only)",
    )  # fmt: skip
    keys: Path = setting(
        KEYS_ENV, _file, DEFAULT_KEYS, "the API's keys file (hashes only, api.md)"
    )
    api_pool_size: int = setting(
        API_POOL_SIZE_ENV, _whole(1), DEFAULT_API_POOL_SIZE,
        "read-only warehouse connections per API worker",
    )  # fmt: skip
    api_cache_mb: int = setting(
        API_CACHE_MB_ENV, _whole(0), DEFAULT_API_CACHE_MB,
        "MiB of API answers cached per warehouse version (0: none)",
    )  # fmt: skip
    postgres_url: str | None = setting(
        POSTGRES_URL_ENV, _text, None,
        "when set, each build also publishes the marts to this PostgreSQL database",
    )  # fmt: skip
    postgres_dir: Path = setting(
        POSTGRES_DIR_ENV, _file, DEFAULT_POSTGRES_DIR,
        "the folder of the private server `callmetrics postgres start` runs",
    )  # fmt: skip
    postgres_port: int = setting(
        POSTGRES_PORT_ENV, _whole(1, 65535), DEFAULT_POSTGRES_PORT,
        "the private PostgreSQL server's port",
    )  # fmt: skip
    postgres_bin: Path | None = setting(
        POSTGRES_BIN_ENV, _file, None,
        "the folder of initdb and pg_ctl (default: Debian's layout, then PATH)",
    )  # fmt: skip
    postgres_switch_wait: float = setting(
        POSTGRES_SWITCH_WAIT_ENV, _seconds, DEFAULT_POSTGRES_SWITCH_WAIT,
        "seconds a PostgreSQL publish waits for running queries before switching versions",
    )  # fmt: skip
    target: str = setting(
        TARGET_ENV, _target, TARGETS[0],
        "the engine dbt builds on: duckdb (embedded) or spark (README, \"Spark\")",
    )  # fmt: skip
    spark_host: str = setting(
        SPARK_HOST_ENV, _text, "127.0.0.1",
        "the Spark Thrift server a Spark build uses (`callmetrics spark start` listens there)",
    )  # fmt: skip
    spark_port: int = setting(
        SPARK_PORT_ENV, _whole(1, 65535), DEFAULT_SPARK_PORT, "the Spark Thrift server's port"
    )
    spark_schema: str = setting(
        SPARK_SCHEMA_ENV, _text, "callmetrics",
        "the prefix of the Spark schemas a build writes (`callmetrics_marts`, ...)",
    )  # fmt: skip
    spark_dir: Path = setting(
        SPARK_DIR_ENV, _file, DEFAULT_SPARK_DIR,
        "the local Spark Thrift server's folder: warehouse, metastore, log, PID file",
    )  # fmt: skip
    spark_memory: str = setting(
        SPARK_MEMORY_ENV, _java_memory, "4g", "the local Spark Thrift server's driver heap"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every variable (unset or empty: the default); refuse a bad value in one line."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = spec.metadata["env"]
            text = (env.get(name) or "").strip()
            if not text:
                continue
            try:
                values[spec.name] = spec.metadata["read"](text)
            except ValueError as exc:
                raise SettingsError(f"{name}={text!r} {exc}") from None
        return cls(**values)

    @property
    def exports(self) -> Path:
        """Where the nightly job writes payloads."""
        return self.export_dir or self.warehouse.parent / "exports"

    def dbt_vars(self, warehouse: Path) -> dict[str, str]:
        """The `--vars` of a dbt call that writes `warehouse` (the build's work file).

        The same for the parse and the build, so dbt's partial parsing holds between them.
        """
        found = {
            "warehouse": str(warehouse),
            "raw_dir": str(self.raw_dir),
            "duckdb_memory_limit": self.duckdb_memory_limit,
        }
        if self.target == "spark":  # the Thrift server the `spark` target connects to
            found.update(spark_host=self.spark_host, spark_port=str(self.spark_port),
                         spark_schema=self.spark_schema)  # fmt: skip
        return found


def _as_written(value: Any) -> str:
    """A default as one would write it in the variable ('' when unset)."""
    if value is None:
        return ""
    if isinstance(value, Path) and value.is_relative_to(PROJECT_ROOT):
        return str(value.relative_to(PROJECT_ROOT))
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, timedelta):
        return f"{value.total_seconds() / 3600:g}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def documented() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of every setting: the README's table, in field order."""
    rows = []
    for spec in fields(Settings):
        rows.append((spec.metadata["env"], _as_written(spec.default), spec.metadata["doc"]))
    return rows
