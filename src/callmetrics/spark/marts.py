"""The marts Spark built, copied into the run's DuckDB work file.

After `dbt build --target spark`, every model of the project's `marts` schema (the call fact,
the dimensions, the section marts and `section_columns`) and `staging.stg_platform__calls`
(whose newest `updated_at` is the payloads' `dataAsOf`) are read into the DuckDB work file that
publishing, the exporter, the API and PostgreSQL read on the DuckDB path too: past this step
the two paths are one. The models are found in the manifest of the build, which also names
their Spark schema (`<CALLMETRICS_SPARK_SCHEMA>_marts`: macros/generate_schema_name.sql); in
DuckDB they keep the project's schema name (`marts.fct_calls`). The DuckDB `marts` schema then
holds exactly those tables (one left by an earlier build is dropped).

Spark is asked where each table lives (`describe table extended`); its tables are plain
Parquet folders (`<location>/[<partition>=<value>/]part-*.parquet`), which DuckDB reads
directly, in parallel, without sending rows through the Thrift connection. Columns keep the
types and the order the dbt project declares for the model (its YAML, as in the manifest), so
a mart copied from Spark has the very table definition of the DuckDB build's; a column the
project does not declare takes the DuckDB type of its Spark type.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb

from callmetrics.errors import UserError
from callmetrics.settings import Settings

MARTS_SCHEMA = "marts"
# Models outside the marts schema that the exporter reads (meta.dataAsOf): (schema, name).
ALSO_COPIED = (("staging", "stg_platform__calls"),)

_SIMPLE_TYPES = {
    "string": "varchar",
    "varchar": "varchar",
    "char": "varchar",
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "tinyint": "tinyint",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    # Spark's `timestamp` is an instant (shown in the session time zone, UTC here)
    "timestamp": "timestamp with time zone",
    "timestamp_ltz": "timestamp with time zone",
    "timestamp_ntz": "timestamp",
    "binary": "blob",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def duckdb_type(spark_type: str) -> str:
    """The DuckDB type holding the values of a Spark column type."""
    text = spark_type.strip().lower()
    if text.startswith("array<") and text.endswith(">"):
        return f"{duckdb_type(text[6:-1])}[]"
    if text.startswith("decimal"):
        return text
    base = re.sub(r"\(.*\)$", "", text)
    if base in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[base]
    raise UserError(f"a Spark column of type {spark_type} has no DuckDB counterpart here")


@dataclass(frozen=True)
class SparkTable:
    """A table as Spark describes it, and the DuckDB table it is copied to."""

    schema: str  # Spark's
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Spark type), Spark's order
    partition_columns: tuple[str, ...]
    location: str
    target_schema: str = MARTS_SCHEMA  # DuckDB's: the project's schema name

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def target(self) -> str:
        return f"{self.target_schema}.{self.name}"

    def local_folder(self) -> Path:
        """The table's folder on this machine (a `file:` location or a plain path)."""
        parsed = urlparse(self.location)
        if parsed.scheme not in ("", "file"):
            raise UserError(
                f"Spark keeps {self.qualified} at {self.location}, which this machine cannot "
                "read as files: run the build where the warehouse folder is mounted "
                "(README, \"Spark\")"
            )
        return Path(unquote(parsed.path))


@dataclass(frozen=True)
class Model:
    """A model to copy: where Spark has it, where DuckDB gets it, its declared columns."""

    spark_schema: str
    schema: str
    name: str
    declared: tuple[tuple[str, str], ...]  # (name, data_type or ''), YAML order


def models_to_copy(manifest_path: Path) -> list[Model]:
    """Every model of the project's marts schema, and ALSO_COPIED, from the build's manifest."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the dbt manifest {manifest_path}: {exc}") from None
    found: list[Model] = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        if config.get("enabled") is False or config.get("materialized") == "ephemeral":
            continue
        schema = str(config.get("schema") or node["schema"])
        name = str(node.get("alias") or node["name"])
        if schema != MARTS_SCHEMA and (schema, name) not in ALSO_COPIED:
            continue
        declared = tuple(
            (column_name, str(column.get("data_type") or ""))
            for column_name, column in (node.get("columns") or {}).items()
        )
        found.append(Model(str(node["schema"]), schema, name, declared))
    return sorted(found, key=lambda m: (m.schema, m.name))


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        total = sum(self.rows.values())
        dropped = f", dropped {', '.join(self.dropped)}" if self.dropped else ""
        return (
            f"copied {len(self.rows)} tables ({total} rows) from Spark into the work file "
            f"in {self.seconds:.1f} s{dropped}"
        )


@contextmanager
def spark_cursor(settings: Settings) -> Iterator[Any]:
    """A cursor on the Thrift server dbt built on (CALLMETRICS_SPARK_HOST/PORT)."""
    from callmetrics.spark.extra import require_spark_extra

    require_spark_extra()
    from pyhive import hive
    from thrift.transport.TTransport import TTransportException

    try:
        con = hive.connect(host=settings.spark_host, port=settings.spark_port)
    except (TTransportException, OSError) as exc:
        raise UserError(
            f"cannot reach the Spark Thrift server at {settings.spark_host}:"
            f"{settings.spark_port} ({exc}): start one with `callmetrics spark start`"
        ) from None
    try:
        cursor = con.cursor()
        cursor.execute("set spark.sql.session.timeZone = UTC")
        yield cursor
    finally:
        con.close()


def _rows(cursor: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def describe(cursor: Any, schema: str, table: str, target_schema: str = MARTS_SCHEMA) -> SparkTable:
    """Columns, partition columns and location of a Spark table."""
    rows = _rows(cursor, f"describe table extended {schema}.{table}")
    columns: list[tuple[str, str]] = []
    partitions: list[str] = []
    details: dict[str, str] = {}
    section = "columns"
    for name, kind, _comment in rows:
        name = (name or "").strip()
        if name == "# Partition Information":
            section = "partitions"
            continue
        if name.startswith("# Detailed Table Information"):
            section = "details"
            continue
        if not name or name.startswith("#"):
            if section == "partitions" and not name:
                section = "after"
            continue
        if section == "columns":
            columns.append((name, (kind or "").strip()))
        elif section == "partitions":
            partitions.append(name)
        elif section == "details":
            details[name] = (kind or "").strip()
    if details.get("Type", "").upper() == "VIEW" or "Location" not in details:
        raise UserError(
            f"{schema}.{table} is a view on Spark, not a table: the marts must be materialized "
            "as tables to be copied"
        )
    return SparkTable(
        schema, table, tuple(columns), tuple(partitions), details["Location"], target_schema
    )


def _hidden(name: str) -> bool:
    """Spark's rule: `.…` is hidden, `_…` too unless it is a partition folder (`_col=value`)."""
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


def data_files(folder: Path) -> list[Path]:
    """The table's Parquet files, skipping what Spark treats as hidden (commit markers,
    checksums, a crashed job's staging folders)."""
    found: list[Path] = []
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found += [
            Path(root) / f for f in sorted(files) if not _hidden(f) and f.endswith(".parquet")
        ]
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def select_list(
    table: SparkTable, declared: tuple[tuple[str, str], ...] | None
) -> list[tuple[str, str]]:
    """The DuckDB table's columns [(name, DuckDB type)]: the declared ones in their order and
    type when Spark has them all, else Spark's columns with their DuckDB types."""
    spark_types = dict(table.columns)
    if declared and all(name in spark_types for name, _type in declared):
        return [(name, kind or duckdb_type(spark_types[name])) for name, kind in declared]
    return [(name, duckdb_type(kind)) for name, kind in table.columns]


def copy_table(
    con: duckdb.DuckDBPyConnection,
    table: SparkTable,
    declared: tuple[tuple[str, str], ...] | None,
) -> int:
    """Replace the DuckDB table `table.target` with Spark's rows; return the row count."""
    names = (table.schema, table.target_schema, table.name, *(c for c, _ in table.columns))
    for name in names:
        if not _IDENTIFIER.match(name):
            raise UserError(f"Spark table {table.qualified} has an unexpected name {name!r}")
    columns = select_list(table, declared)
    target = f"{_quote(table.target_schema)}.{_quote(table.name)}"
    con.execute(f"create schema if not exists {_quote(table.target_schema)}")
    files = data_files(table.local_folder())
    if not files:
        definition = ", ".join(f"{_quote(n)} {kind}" for n, kind in columns)
        con.execute(f"create or replace table {target} ({definition})")
        return 0
    spark_types = dict(table.columns)
    options = ["union_by_name = true"]
    if table.partition_columns:
        hive_types = ", ".join(
            f"{_literal(c)}: {_literal(duckdb_type(spark_types[c]))}"
            for c in table.partition_columns
        )
        # partition values come from the folder names (URL-decoded; a timestamp's is written
        # in the session time zone, UTC)
        options += ["hive_partitioning = true", f"hive_types = {{{hive_types}}}"]
    else:
        options.append("hive_partitioning = false")
    listed = ", ".join(_literal(str(f)) for f in files)
    casts = ", ".join(f"cast({_quote(n)} as {kind}) as {_quote(n)}" for n, kind in columns)
    con.execute(
        f"create or replace table {target} as select {casts} "
        f"from read_parquet([{listed}], {', '.join(options)})"
    )
    row = con.execute(f"select count(*) from {target}").fetchone()
    return int(row[0]) if row else 0


def copy_marts(settings: Settings, work_path: Path, manifest_path: Path) -> CopyReport:
    """Copy the marts (and ALSO_COPIED) that the dbt build in `manifest_path` wrote on Spark
    into the DuckDB file `work_path`."""
    started = time.perf_counter()
    models = models_to_copy(manifest_path)
    if not any(m.schema == MARTS_SCHEMA for m in models):
        raise UserError(f"the dbt manifest {manifest_path} has no model in schema '{MARTS_SCHEMA}'")
    with spark_cursor(settings) as cursor:
        tables = [(describe(cursor, m.spark_schema, m.name, m.schema), m) for m in models]
    rows: dict[str, int] = {}
    with duckdb.connect(str(work_path)) as con:
        con.execute("set timezone = 'UTC'")
        con.execute("begin transaction")
        for table, model in tables:
            rows[table.target] = copy_table(con, table, model.declared)
        kept = {m.name for m in models if m.schema == MARTS_SCHEMA}
        dropped = _drop_others(con, kept)
        con.execute("commit")
        con.execute("checkpoint")
    return CopyReport(
        rows=rows, dropped=dropped, seconds=round(time.perf_counter() - started, 3)
    )


def _drop_others(con: duckdb.DuckDBPyConnection, kept: set[str]) -> list[str]:
    """Drop the marts Spark does not have (left by an earlier build of the work file)."""
    found = con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_catalog = current_database() and table_schema = ?",
        [MARTS_SCHEMA],
    ).fetchall()
    dropped = []
    for name, kind in found:
        if name in kept:
            continue
        what = "view" if "VIEW" in str(kind).upper() else "table"
        con.execute(f"drop {what} {_quote(MARTS_SCHEMA)}.{_quote(name)}")
        dropped.append(f"{MARTS_SCHEMA}.{name}")
    return sorted(dropped)
