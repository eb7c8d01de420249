"""The dbt project as assets: the agents snapshot, seeds, models and their tests.

One `@dbt_assets` op runs one `dbt build`: dbt orders the nodes itself, so the agents snapshot
is taken before any model reads it, and the run pays dbt's start-up (about 20 s) once, not once
per step. The op is not partitioned: the models are incremental on arrival (what a run loads
is what arrived, whatever day the run is for), so no day would mean anything to dbt; the
day of a run matters to the freshness checks and the exports only. `--full-refresh` rebuilds
the incremental models; dbt never rebuilds a snapshot, so the agents' history survives it. dbt
writes the run's work file (`orchestration.assets.publish`), never the live warehouse. dbt
tests arrive as asset checks; a failing test fails the step, so nothing downstream (the
export) runs on bad data.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.

import shutil
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, Config, Failure
from dagster_dbt import DbtCliResource, dbt_assets

from callmetrics.settings import Settings
from callmetrics.spark.build import after_dbt, check_loaded_target
from orchestration.assets.dbt_results import failure_summary
from orchestration.assets.publish import store
from orchestration.project import DBT_PROJECT, TRANSLATOR


class DbtBuildConfig(Config):
    """Run config of the dbt step: `full_refresh` rebuilds every incremental model."""

    full_refresh: bool = False


def _build(context: AssetExecutionContext, dbt: DbtCliResource, args: list[str]) -> Iterator[Any]:
    """Run dbt on the run's work file; on success drop its per-invocation target folder (it is
    kept after a failure, for the logs and run_results.json). A failure is raised with one line
    read from run_results.json (or dbt's structured log when dbt could not start)."""
    # dbt starts inside `cli()`, reading CALLMETRICS_WAREHOUSE then: the work file of this run.
    settings = Settings.from_env()
    check_loaded_target(settings, DBT_PROJECT.target)  # on Spark: the extra, the server
    with store().building(context.run.run_id) as work:
        invocation = dbt.cli(args, context=context, raise_on_error=False)
    yield from invocation.stream()
    if not invocation.is_successful():
        log_errors = list(getattr(invocation, "_error_messages", []))
        raise Failure(
            description=failure_summary(invocation.target_path / "run_results.json", log_errors)
        )
    # on Spark: the marts Spark wrote, into the work file that publishing reads
    copied = after_dbt(settings, work.path, invocation.target_path / "manifest.json")
    if copied:
        context.log.info(copied)
    shutil.rmtree(invocation.target_path, ignore_errors=True)


@dbt_assets(
    manifest=DBT_PROJECT.manifest_path,
    project=DBT_PROJECT,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_models",
)
def dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
) -> Iterator[Any]:
    """`dbt build` of the snapshot, seeds, models and tests; incremental unless `full_refresh`."""
    args = ["build"]
    if config.full_refresh:
        args.append("--full-refresh")
    yield from _build(context, dbt, args)
