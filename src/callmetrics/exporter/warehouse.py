"""Opening the warehouse read-only, with one clear error line for every way it can fail."""

from __future__ import annotations

from pathlib import Path

import duckdb

from callmetrics.errors import UserError
from callmetrics.exporter.sections import DECLARATION_TABLE

# What the exporter reads besides the section marts, which the declaration names.
REQUIRED_TABLES = (
    DECLARATION_TABLE, "fct_calls", "dim_organizations", "dim_resellers", "dim_agents",
)
_BUILD_HINT = "run `callmetrics build` (or point CALLMETRICS_WAREHOUSE at a built warehouse)"


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a built warehouse, in the UTC time zone."""
    if not path.exists():
        raise UserError(f"warehouse {path} does not exist: {_BUILD_HINT}")
    if not path.is_file():
        raise UserError(f"warehouse {path} is not a file: {_BUILD_HINT}")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open warehouse {path} ({first_line}): {_BUILD_HINT}") from None
    try:
        con.execute("set TimeZone = 'UTC'")
        found = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        missing = [t for t in REQUIRED_TABLES if t not in found]
        if missing:
            raise UserError(
                f"warehouse {path} is not built yet (missing marts.{', marts.'.join(missing)}): "
                f"{_BUILD_HINT}"
            )
    except BaseException:
        con.close()
        raise
    return con
