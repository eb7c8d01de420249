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

Nothing is built at import: `build_definitions(settings)` assembles them (reading the dbt
manifest, parsing the project first when it changed) and caches them per `Settings`; `defs`
is its `@definitions` entry point for `dagster dev` / `dagster definitions validate`, with the
settings read from the environment when Dagster loads the code location.

`callmetrics build` runs the same `nightly` job in process (`callmetrics.pipeline`).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    build_schedule_from_partitioned_job,
    define_asset_job,
    definitions,
    in_process_executor,
)
from dagster_dbt import DbtProject, get_asset_key_for_model

from callmetrics.orchestration.assets.dbt import build_dbt_assets
from callmetrics.orchestration.assets.export import build_export_asset, build_mart_freshness_check
from callmetrics.orchestration.assets.publish import (
    PUBLISHED_KEY,
    build_publish_asset,
    warehouse_store,
)
from callmetrics.orchestration.assets.raw import build_raw_checks, raw_asset_specs, raw_sources
from callmetrics.orchestration.partitions import daily_partitions
from callmetrics.orchestration.project import (
    dbt_project,
    dbt_resource,
    project_schema,
    translator,
)
from callmetrics.settings import DEFAULT_NIGHTLY_AT, NIGHTLY_AT_ENV, Settings
from callmetrics.spark.build import target_of_builds

NIGHTLY_JOB = "nightly"
SCHEDULE = "nightly_schedule"
MARTS_SCHEMA = "marts"
# The mart whose grain holds every counted call: its freshness gates the export.
FRESHNESS_MART = "mart_metrics"


def _models_in_schema(manifest: dict[str, Any], schema: str) -> list[dict[str, Any]]:
    return sorted(
        (
            node
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and project_schema(node) == schema
        ),
        key=lambda node: node["name"],
    )


def project_for(settings: Settings) -> DbtProject:
    """The dbt project, its manifest parsed with the vars of `settings`' builds."""
    return dbt_project(
        settings.dbt_vars(warehouse_store(settings).work_path), target=target_of_builds(settings)
    )


@cache
def build_definitions(settings: Settings) -> Definitions:
    """Every asset, check, job and schedule for `settings` (cached: one build per settings)."""
    store = warehouse_store(settings)
    project = project_for(settings)
    dbt_translator = translator()
    manifest = json.loads(project.manifest_path.read_text(encoding="utf-8"))
    partitions = daily_partitions(settings.partitions_start)
    dbt_models = build_dbt_assets(project, dbt_translator, store, settings)
    sources = raw_sources(manifest, dbt_translator)
    marts = _models_in_schema(manifest, MARTS_SCHEMA)
    mart_keys = [get_asset_key_for_model([dbt_models], node["name"]) for node in marts]
    # Publishing waits for the whole dbt build (any key of the models step would do; every mart
    # keeps the lineage readable) and for the blocking freshness check on the marts.
    checks = [build_raw_checks(sources, settings)]
    checks += [
        build_mart_freshness_check(
            get_asset_key_for_model([dbt_models], node["name"]),
            f"{project_schema(node)}.{node['alias'] or node['name']}",
            settings,
        )
        for node in marts
        if node["name"] == FRESHNESS_MART
    ]
    nightly_job = define_asset_job(
        NIGHTLY_JOB,
        selection=AssetSelection.all() | AssetSelection.all_asset_checks(),
        partitions_def=partitions,
        description=(
            "Raw freshness checks, the agents snapshot, every dbt model and test, the marts' "
            "freshness, publishing, then the export-all payloads for the day that just ended "
            "and the trailing 30 days."
        ),
    )
    at = settings.nightly_at
    # The time zone is the partitions' (UTC, explicit in orchestration.partitions): Dagster
    # takes a time-partitioned job's schedule time zone from its partitions definition.
    nightly_schedule = build_schedule_from_partitioned_job(
        nightly_job,
        name=SCHEDULE,
        hour_of_day=at.hour,
        minute_of_hour=at.minute,
        default_status=DefaultScheduleStatus.RUNNING,
        description=(
            f"Runs `{NIGHTLY_JOB}` at {at:%H:%M} {partitions.timezone} for the day that just "
            f"ended; the time comes from ${NIGHTLY_AT_ENV} (HH:MM, default {DEFAULT_NIGHTLY_AT})."
        ),
    )
    return Definitions(
        assets=[
            *raw_asset_specs(sources),
            dbt_models,
            build_publish_asset(mart_keys, settings),
            build_export_asset([*mart_keys, PUBLISHED_KEY], partitions, settings),
        ],
        asset_checks=checks,
        jobs=[nightly_job],
        schedules=[nightly_schedule],
        resources={"dbt": dbt_resource(project)},
        # One step at a time: a DuckDB file takes one writer, and no reader may hold it during
        # dbt.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """The code location Dagster loads (`[tool.dagster]` in pyproject.toml)."""
    return build_definitions(Settings.from_env())
