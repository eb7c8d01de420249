"""The dbt project as assets: the agents snapshot, seeds, models and their tests.

One `@dbt_assets` op runs one `dbt build`: dbt orders the nodes itself, so the agents snapshot
is taken before any model reads it, and the run pays dbt's start-up (about 20 s) once, not once
per step. The op is not partitioned: the models are incremental on arrival (what a run loads
is what arrived, whatever day the run is for), so no day would mean anything to dbt; the
day of a run matters to the freshness checks and the exports only. `--full-refresh` rebuilds
the incremental models; dbt never rebuilds a snapshot, so the agents' history survives it. dbt
writes the run's work file (its path passed as `--vars`), never the live warehouse. dbt
tests arrive as asset checks; a failing test fails the step, so nothing downstream (the
export) runs on bad data.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at runtime.

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition, Config, Failure
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from callmetrics.orchestration.assets.dbt_results import failure_summary
from callmetrics.orchestration.project import vars_arg
from callmetrics.publishing.store import WarehouseStore
from callmetrics.settings import Settings
from callmetrics.spark.build import after_dbt, check_loaded_target


class DbtBuildConfig(Config):
    """Run config of the dbt step: `full_refresh` rebuilds every incremental model."""

    full_refresh: bool = False


def build_dbt_assets(
    project: DbtProject,
    translator: DagsterDbtTranslator,
    store: WarehouseStore,
    settings: Settings,
) -> AssetsDefinition:
    """The `@dbt_assets` of `project` (its manifest is read here, when the definitions are
    built), writing the work files of `store`."""

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        name="dbt_models",
    )
    def dbt_models(
        context: AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
    ) -> Iterator[Any]:
        """`dbt build` of the snapshot, seeds, models and tests; incremental unless
        `full_refresh`."""
        args = ["build"]
        if config.full_refresh:
            args.append("--full-refresh")
        check_loaded_target(settings, project.target)  # on Spark: the extra, the server
        work = store.ensure_work(context.run.run_id)
        args += vars_arg(settings.dbt_vars(work.path))
        yield from _build(context, dbt, args, after=after_spark(settings, work.path))

    return dbt_models


def after_spark(settings: Settings, work: Path) -> Callable[[Path], str | None]:
    """What follows a successful dbt build: on Spark, its marts copied into the work file that
    publishing reads (callmetrics.spark.build.after_dbt; nothing on DuckDB)."""
    return lambda manifest: after_dbt(settings, work, manifest)


def _build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    args: list[str],
    after: Callable[[Path], str | None] | None = None,
) -> Iterator[Any]:
    """Run dbt; on success run `after` (given the build's manifest) and drop its
    per-invocation target folder (it is kept after a failure, for the logs and
    run_results.json). A failure is raised with one line read from run_results.json (or dbt's
    structured log when dbt could not start)."""
    invocation = dbt.cli(args, context=context, raise_on_error=False)
    yield from invocation.stream()
    if not invocation.is_successful():
        log_errors = list(getattr(invocation, "_error_messages", []))
        raise Failure(
            description=failure_summary(invocation.target_path / "run_results.json", log_errors)
        )
    done = after(invocation.target_path / "manifest.json") if after else None
    if done:
        context.log.info(done)
    shutil.rmtree(invocation.target_path, ignore_errors=True)
