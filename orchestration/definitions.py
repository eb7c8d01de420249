"""Everything Dagster loads: `dagster dev` in the project root finds this module via
`[tool.dagster]` in pyproject.toml.

- the raw Parquet tables as external assets, with freshness checks that gate the run;
- the dbt project (the agents snapshot, seeds and models: one `dbt build`) as assets, its
  tests as asset checks (not partitioned: the models are incremental on arrival);
- `warehouse/published_version`: the run's work file published as the live warehouse once every
  dbt test and freshness check passed (write, audit, publish: `callmetrics.publishing`);
- the export-all payloads as a daily-partitioned asset downstream of every model in the `marts`
  schema and of the published version (the partition is the day whose payloads it writes);
- the `nightly` job over all of it and its schedule (02:00 UTC by default).

`callmetrics build` runs the same `nightly` job in process (`callmetrics.pipeline`).
"""

from __future__ import annotations

import json
from typing import Any

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    build_schedule_from_partitioned_job,
    define_asset_job,
    in_process_executor,
)
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from callmetrics.settings import DEFAULT_NIGHTLY_AT, NIGHTLY_AT_ENV, Settings
from orchestration.assets.dbt import dbt_models
from orchestration.assets.export import build_export_asset, build_mart_freshness_check
from orchestration.assets.publish import PUBLISHED_KEY, build_publish_asset
from orchestration.assets.raw import build_raw_checks, raw_asset_specs, raw_sources
from orchestration.partitions import DAILY
from orchestration.project import DBT_PROJECT, TRANSLATOR, project_schema

NIGHTLY_JOB = "nightly"
MARTS_SCHEMA = "marts"
# The mart whose grain holds every counted call: its freshness gates the export.
FRESHNESS_MART = "mart_metrics"


def nightly_at(text: str | None) -> tuple[int, int]:
    """'HH:MM' (UTC, the partitions' time zone) as (hour, minute)."""
    value = text or DEFAULT_NIGHTLY_AT
    try:
        hour_text, minute_text = value.split(":")
        hour, minute = int(hour_text), int(minute_text)
    except ValueError:
        hour = minute = -1
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{NIGHTLY_AT_ENV}={value!r} is not a time of day: write HH:MM (UTC)")
    return hour, minute


def _manifest() -> dict[str, Any]:
    return json.loads(DBT_PROJECT.manifest_path.read_text(encoding="utf-8"))


def _models_in_schema(manifest: dict[str, Any], schema: str) -> list[dict[str, Any]]:
    return sorted(
        (
            node
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and project_schema(node) == schema
        ),
        key=lambda node: node["name"],
    )


MANIFEST = _manifest()
RAW_SOURCES = raw_sources(MANIFEST, TRANSLATOR)
MART_MODELS = _models_in_schema(MANIFEST, MARTS_SCHEMA)

MART_KEYS = [get_asset_key_for_model([dbt_models], node["name"]) for node in MART_MODELS]
# Publishing waits for the whole dbt build (any key of the models step would do; every mart
# keeps the lineage readable) and for the blocking freshness check on the marts.
published_version = build_publish_asset(MART_KEYS)
export_payloads = build_export_asset([*MART_KEYS, PUBLISHED_KEY])
_checks = [build_raw_checks(RAW_SOURCES)]
_freshness_nodes = [node for node in MART_MODELS if node["name"] == FRESHNESS_MART]
for node in _freshness_nodes:
    _checks.append(
        build_mart_freshness_check(
            get_asset_key_for_model([dbt_models], node["name"]),
            f"{project_schema(node)}.{node['alias'] or node['name']}",
        )
    )

nightly_job = define_asset_job(
    NIGHTLY_JOB,
    selection=AssetSelection.all() | AssetSelection.all_asset_checks(),
    partitions_def=DAILY,
    description=(
        "Raw freshness checks, the agents snapshot, every dbt model and test, the marts' "
        "freshness, publishing, then the export-all payloads for the day that just ended and "
        "the trailing 30 days."
    ),
)

_hour, _minute = nightly_at(Settings.from_env().nightly_at)
# The time zone is the partitions' (UTC, explicit in orchestration.partitions): Dagster takes a
# time-partitioned job's schedule time zone from its partitions definition.
nightly_schedule = build_schedule_from_partitioned_job(
    nightly_job,
    name="nightly_schedule",
    hour_of_day=_hour,
    minute_of_hour=_minute,
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        f"Runs `{NIGHTLY_JOB}` at {_hour:02d}:{_minute:02d} {DAILY.timezone} for the day that "
        f"just ended; the time comes from ${NIGHTLY_AT_ENV} (HH:MM, default {DEFAULT_NIGHTLY_AT})."
    ),
)

defs = Definitions(
    assets=[
        *raw_asset_specs(RAW_SOURCES),
        dbt_models,
        published_version,
        export_payloads,
    ],
    asset_checks=_checks,
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    resources={"dbt": DbtCliResource(project_dir=DBT_PROJECT)},
    # One step at a time: a DuckDB file takes one writer, and no reader may hold it during dbt.
    executor=in_process_executor,
)
