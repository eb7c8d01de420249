"""DuckDB steps of publishing: create a compatible file, stamp, audit, export."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

# Every warehouse file is created readable by DuckDB 1.4 and later, so BI drivers that bundle
# an older DuckDB can open it. DuckDB records this in the file and keeps to it when the file is
# opened again without the setting (dbt-duckdb opens it so).
STORAGE_COMPATIBILITY = "v1.4.0"
MARTS_SCHEMA = "marts"
META_SCHEMA = "meta"
META_TABLE = "warehouse_version"
# Tables of the marts schema published as Parquet: the section marts and the dimensions.
PARQUET_PREFIXES = ("mart_", "dim_")
PARQUET_FILE = "part-0.parquet"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_compatible(path: Path) -> None:
    """Create an empty database file in the storage format of DuckDB 1.4."""
    duckdb.connect(
        str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
    ).close()


def storage_version(path: Path) -> str | None:
    """The storage version a database file is written in ('v1.4.0+'), None when not told."""
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute(
            "select tags['storage_version'] from duckdb_databases() "
            "where database_name = current_database()"
        ).fetchone()
    return None if row is None else row[0]


def stamped_version(path: Path) -> int | None:
    """The version number a warehouse file was published as; None when it has no stamp.

    Raises duckdb.Error when the file cannot be opened (damaged)."""
    with duckdb.connect(str(path)) as con:
        found = con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
            [META_SCHEMA, META_TABLE],
        ).fetchone()
        if not found or not found[0]:
            return None
        row = con.execute(f"select number from {META_SCHEMA}.{META_TABLE}").fetchone()
        return None if row is None else int(row[0])


@dataclass(frozen=True)
class Audit:
    """What the publish step found in the built file."""

    row_counts: dict[str, int]
    parquet_tables: list[str]


def audit_marts(con: duckdb.DuckDBPyConnection) -> Audit:
    """Row counts of every table in the marts schema; the built file must have some."""
    tables = [
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? order by 1",
            [MARTS_SCHEMA],
        ).fetchall()
    ]
    counts: dict[str, int] = {}
    for table in tables:
        row = con.execute(f"select count(*) from {MARTS_SCHEMA}.{_quote(table)}").fetchone()
        counts[table] = int(row[0]) if row else 0
    parquet = [t for t in tables if t.startswith(PARQUET_PREFIXES)]
    return Audit(row_counts=counts, parquet_tables=parquet)


def stamp(
    con: duckdb.DuckDBPyConnection,
    *,
    number: int,
    name: str,
    published_at: datetime,
    base: str | None,
    method: str,
) -> None:
    """Record in the file itself which version it is, so a reader can ask."""
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(
        f"create or replace table {META_SCHEMA}.{META_TABLE} ("
        "version varchar, number integer, published_at timestamptz, "
        "base_version varchar, build_method varchar)"
    )
    con.execute(
        f"insert into {META_SCHEMA}.{META_TABLE} values (?, ?, ?, ?, ?)",
        [name, number, published_at, base, method],
    )


def table_digest(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A digest of a marts table's columns and rows (as a multiset): equal digests, equal
    tables, short of a 128-bit collision."""
    columns = con.execute(
        "select string_agg(column_name || ' ' || data_type, ', ' order by column_index) "
        "from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [MARTS_SCHEMA, table],
    ).fetchone()
    rows = con.execute(
        f"select count(*), coalesce(sum(hash(t)::hugeint), 0), "
        f"coalesce(sum(hash(t, 1)::hugeint), 0) from {MARTS_SCHEMA}.{_quote(table)} as t"
    ).fetchone()
    assert columns is not None and rows is not None
    return f"{columns[0]}|{rows[0]}|{rows[1]}|{rows[2]}"


@dataclass(frozen=True)
class ParquetCopies:
    """What export_parquet did: bytes in the folder, digests, and the tables linked unchanged."""

    bytes: int
    digests: dict[str, str]
    kept: list[str]


def export_parquet(
    con: duckdb.DuckDBPyConnection,
    tables: list[str],
    folder: Path,
    previous: Path | None = None,
    previous_digests: dict[str, str] | None = None,
) -> ParquetCopies:
    """Write each table to folder/<table>/part-0.parquet.

    A table whose digest equals its digest in the previous version (`previous_digests`, of the
    Parquet folder `previous`) is not written again: its previous file is hard-linked (the
    files are never modified, so the two versions share it)."""
    written = 0
    digests: dict[str, str] = {}
    kept: list[str] = []
    for table in tables:
        target = folder / table
        target.mkdir(parents=True)
        file = target / PARQUET_FILE
        digests[table] = table_digest(con, table)
        old = None if previous is None else previous / table / PARQUET_FILE
        if (
            old is not None
            and previous_digests
            and previous_digests.get(table) == digests[table]
            and old.is_file()
        ):
            os.link(old, file)
            kept.append(table)
        else:
            con.execute(
                f"copy (select * from {MARTS_SCHEMA}.{_quote(table)}) to {_literal(str(file))} "
                "(format parquet, compression zstd)"
            )
        written += file.stat().st_size
    return ParquetCopies(bytes=written, digests=digests, kept=kept)
