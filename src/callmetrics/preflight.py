"""Checks on the raw directory before a build, so a user's mistake is one clear line.

dbt would otherwise fail deep inside a model with a DuckDB binder error. Only the
Parquet footers are read (no data), so the check costs milliseconds at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from callmetrics.errors import UserError
from callmetrics.settings import RAW_DIR_ENV, RAW_TABLES

STRING, TIMESTAMP, INTEGER = "string", "timestamp", "integer"

# The columns of ../shared/spec/raw-sources.md and the kind of Parquet type each must have.
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "resellers": {"id": STRING, "name": STRING, "created_at": TIMESTAMP},
    "organizations": {
        "id": STRING,
        "name": STRING,
        "reseller_id": STRING,
        "timezone": STRING,
        "created_at": TIMESTAMP,
    },
    "agents": {
        "id": STRING,
        "organization_id": STRING,
        "name": STRING,
        "status": STRING,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
    "calls": {
        "id": STRING,
        "organization_id": STRING,
        "agent_id": STRING,
        "started_at": TIMESTAMP,
        "ended_at": TIMESTAMP,
        "outcome": STRING,
        "transferred_at": TIMESTAMP,
        "sentiment": STRING,
        "user_corrections": INTEGER,
        "escalation_reason": STRING,
        "updated_at": TIMESTAMP,
    },
    "telemetry_events": {
        "event_id": STRING,
        "call_id": STRING,
        "event_type": STRING,
        "occurred_at": TIMESTAMP,
        "payload": STRING,
    },
}


@dataclass(frozen=True)
class RawInventory:
    """What the check found: Parquet files per table."""

    files: dict[str, list[Path]]

    def file_count(self, table: str) -> int:
        return len(self.files[table])


def _kind_matches(kind: str, arrow_type: pa.DataType) -> bool:
    if pa.types.is_null(arrow_type):
        return True  # a column that is null in every row of a file carries no type
    if kind == STRING:
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if kind == TIMESTAMP:
        return pa.types.is_timestamp(arrow_type)
    if kind == INTEGER:
        return pa.types.is_integer(arrow_type)
    raise AssertionError(kind)


def _check_file(table: str, path: Path, raw_dir: Path) -> None:
    rel = path.relative_to(raw_dir)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise UserError(f"raw file {rel} is not a readable Parquet file ({exc})") from None
    for column, kind in EXPECTED_COLUMNS[table].items():
        index = schema.get_field_index(column)
        if index < 0:
            raise UserError(
                f"raw file {rel} has no column '{column}', which table '{table}' requires "
                "(see the raw-sources contract)"
            )
        arrow_type = schema.field(index).type
        if not _kind_matches(kind, arrow_type):
            raise UserError(
                f"raw file {rel}: column '{column}' is {arrow_type}, but table '{table}' "
                f"needs a {kind} column"
            )


def check_raw_dir(raw_dir: Path) -> RawInventory:
    """Raise UserError unless raw_dir holds every table of the contract with valid schemas."""
    if not raw_dir.exists():
        raise UserError(
            f"raw directory {raw_dir} does not exist: set {RAW_DIR_ENV} or run "
            f"`callmetrics generate --out {raw_dir}`"
        )
    if not raw_dir.is_dir():
        raise UserError(f"raw directory {raw_dir} is not a directory: set {RAW_DIR_ENV}")
    if not any(raw_dir.iterdir()):
        raise UserError(
            f"raw directory {raw_dir} is empty: run `callmetrics generate --out {raw_dir}` "
            "or point it at an extract"
        )
    files: dict[str, list[Path]] = {}
    for table in RAW_TABLES:
        folder = raw_dir / table
        if not folder.is_dir():
            raise UserError(f"raw directory {raw_dir} has no '{table}' folder")
        found = sorted(folder.rglob("*.parquet"))
        if not found:
            raise UserError(f"raw table '{table}' has no Parquet files under {folder}")
        for path in found:
            _check_file(table, path, raw_dir)
        files[table] = found
    return RawInventory(files=files)
