"""``meta``: what a payload answered (``api.md``), the same for ``callmetrics export`` and the API.

Two facts belong to the warehouse version, not to the request, so they are read once per
opened version (``warehouse_facts``):

- ``warehouseVersion``: the name the publish step stamped into the file
  (``meta.warehouse_version``); a file built before versioning is named after its file.
- ``dataAsOf``: the newest ``updated_at`` of any call version the warehouse loaded. The
  staging table holds the latest version of every call, so its greatest ``updated_at`` is the
  newest of all versions; ``null`` when no call was ever loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from callmetrics.exporter.payload import MetricsData
from callmetrics.exporter.timerange import TimeRange, iso

DEFAULT_TIME_ZONE = "UTC"
DEFAULT_GRANULARITY = "day"
_VERSION_TABLE = ("meta", "warehouse_version")
_CALL_VERSIONS = ("staging", "stg_platform__calls")

Granularity = Literal["day", "week", "month"]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class Meta(_Model):
    """The schema's ``meta`` block."""

    start_date: str = Field(description="the range's start as resolved: a UTC instant, in µs")
    end_date: str = Field(description="the range's end as resolved: a UTC instant, in µs")
    time_zone: str = Field(description="the time zone applied")
    granularity: Granularity = Field(description="the dailyVolume period applied")
    warehouse_version: str = Field(description="the published warehouse version that answered")
    data_as_of: str | None = Field(
        description="the newest updated_at of any call version in that warehouse version"
    )


class MetricsAnswer(_Model):
    """``{"data": {...}, "meta": {...}}``: the body of ``GET /v1/metrics`` and of ``export``."""

    data: MetricsData
    meta: Meta

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)


@dataclass(frozen=True)
class WarehouseFacts:
    """What ``meta`` says about the warehouse version itself."""

    version: str
    data_as_of: str | None


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def warehouse_facts(con: duckdb.DuckDBPyConnection, path: Path) -> WarehouseFacts:
    """The version name and ``dataAsOf`` of the warehouse open on ``con`` (opened at ``path``)."""
    version = None
    if _has_table(con, *_VERSION_TABLE):
        row = con.execute("select version from meta.warehouse_version").fetchone()
        version = row[0] if row else None
    if not version:
        version = Path(os.path.realpath(path)).stem
    data_as_of = None
    if _has_table(con, *_CALL_VERSIONS):
        row = con.execute("select max(updated_at) from staging.stg_platform__calls").fetchone()
        if row and row[0] is not None:
            data_as_of = iso(row[0])
    return WarehouseFacts(version=str(version), data_as_of=data_as_of)


def payload_meta(
    time_range: TimeRange,
    facts: WarehouseFacts,
    time_zone: str = DEFAULT_TIME_ZONE,
    granularity: Granularity = DEFAULT_GRANULARITY,
) -> Meta:
    """The ``meta`` block of one answer."""
    return Meta(
        start_date=iso(time_range.start),
        end_date=iso(time_range.end),
        time_zone=time_zone,
        granularity=granularity,
        warehouse_version=facts.version,
        data_as_of=facts.data_as_of,
    )
