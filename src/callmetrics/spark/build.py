"""The build's Spark path: the same dbt call on the `spark` target, then the marts copied in.

`callmetrics build` and the Dagster job run one `dbt build`; with `CALLMETRICS_TARGET=spark` the
dbt project is parsed, built and tested with `--target spark` (the Dagster definitions give
`target_of_builds()` to their `DbtProject`; profiles.yml: the Thrift server of the Spark
settings, passed as `--vars`), so Dagster's asset graph is Spark's, and,
once dbt and its tests passed, `after_dbt` copies the marts Spark wrote into the run's DuckDB
work file (callmetrics.spark.marts). Publishing, the exporter, the API and PostgreSQL then read
that file exactly as after a DuckDB build.
"""

from __future__ import annotations

from pathlib import Path

from callmetrics.errors import UserError
from callmetrics.settings import SPARK_HOST_ENV, SPARK_PORT_ENV, TARGET_ENV, Settings

SPARK = "spark"


def on_spark(settings: Settings) -> bool:
    return settings.target == SPARK


def check_target(settings: Settings) -> None:
    """Before a Spark build: the extra is installed and the Thrift server answers (one line
    saying what to do otherwise). Nothing to check for DuckDB."""
    if not on_spark(settings):
        return
    from callmetrics.local_server import port_open
    from callmetrics.spark.extra import require_spark_extra

    require_spark_extra()
    if not port_open(settings.spark_host, settings.spark_port):
        raise UserError(
            f"no Spark Thrift server answers at {settings.spark_host}:{settings.spark_port}: "
            f"start one with `callmetrics spark start`, or set {SPARK_HOST_ENV}/{SPARK_PORT_ENV}"
            " to your cluster's"
        )


def target_of_builds(settings: Settings) -> str | None:
    """The dbt target the project is parsed and built with (None: the profile's default,
    DuckDB)."""
    return SPARK if on_spark(settings) else None


def check_loaded_target(settings: Settings, loaded: str | None) -> None:
    """Before the dbt step: the definitions were loaded for the target the settings name (a
    process that changed CALLMETRICS_TARGET after loading them would build the other graph),
    and on Spark the extra and the server are there."""
    if loaded != target_of_builds(settings):
        raise UserError(
            f"the Dagster definitions were loaded for the dbt target {loaded or 'duckdb'}, but "
            f"{TARGET_ENV}={settings.target}: reload them (restart the process)"
        )
    check_target(settings)


def after_dbt(settings: Settings, work_path: Path, manifest_path: Path) -> str | None:
    """After a successful dbt build on Spark: its marts into the DuckDB work file; returns a
    line for the log (None on DuckDB, where dbt wrote the work file itself)."""
    if not on_spark(settings):
        return None
    from callmetrics.spark.marts import copy_marts

    return copy_marts(settings, work_path, manifest_path).summary()
