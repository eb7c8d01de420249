"""The dbt project as Dagster sees it: one `DbtProject`, a current manifest, asset keys and groups.

Importing this module makes sure `target/manifest.json` exists and is current:

- under `dagster dev`, `prepare_if_dev()` re-parses the project at every load;
- anywhere else (`callmetrics build`, pytest, `dagster definitions validate`) the manifest is
  re-parsed with `dbt parse` when it is missing or older than any file of the dbt project.

The profile reads `CALLMETRICS_WAREHOUSE` and `CALLMETRICS_RAW_DIR`, so the resolved settings are
exported first (defaults from `callmetrics.settings` when unset). dbt only ever writes the
warehouse's work file (`callmetrics.publishing`), so the project is parsed with the profile
pointing there too: the profile dbt parses with is the one every build runs with, and dbt's
partial parsing keeps working from one build to the next.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from callmetrics.publishing import WarehouseStore
from callmetrics.settings import DBT_PROJECT_DIR, WAREHOUSE_ENV, Settings, warehouse_env
from callmetrics.spark.build import target_of_builds

# Folders and files whose changes change the manifest.
_DBT_INPUT_DIRS = ("models", "snapshots", "seeds", "macros", "tests/dbt", "analyses")
_DBT_INPUT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
RAW_GROUP = "raw"


def ensure_dbt_on_path() -> None:
    """DbtCliResource runs `dbt` from PATH: add the interpreter's bin dir when it is missing."""
    if shutil.which("dbt"):
        return
    bin_dir = Path(sys.executable).parent
    if (bin_dir / "dbt").exists():
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def _dbt_input_mtimes(project_dir: Path) -> Iterator[float]:
    for name in _DBT_INPUT_FILES:
        path = project_dir / name
        if path.exists():
            yield path.stat().st_mtime
    for name in _DBT_INPUT_DIRS:
        top = project_dir / name
        if not top.is_dir():
            continue
        # A directory's mtime changes when a file in it is added, removed or renamed.
        for folder, _dirs, files in os.walk(top):
            yield Path(folder).stat().st_mtime
            for file in files:
                yield (Path(folder) / file).stat().st_mtime


def _profile_stamp(project: DbtProject) -> Path:
    """Names the warehouse path the manifest (and dbt's partial parsing state) was parsed for."""
    return project.manifest_path.with_name("parsed_for_warehouse.txt")


def _parsed_for() -> str:
    """The warehouse path, and the dbt target when it is not the default (Spark's graph differs:
    callmetrics.spark), that a manifest is parsed for."""
    target = Settings.from_env().target
    warehouse = os.environ.get(WAREHOUSE_ENV) or ""
    return warehouse if target == "duckdb" else f"{warehouse}\ntarget={target}"


def manifest_is_stale(project: DbtProject) -> bool:
    """True when the manifest is missing, older than any input of the dbt project, or parsed
    with the profile of another warehouse."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    stamp = _profile_stamp(project)
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != _parsed_for():
        return True
    built = manifest.stat().st_mtime
    return any(mtime > built for mtime in _dbt_input_mtimes(project.project_dir))


@contextlib.contextmanager
def profile_of_builds() -> Iterator[None]:
    """The profile as every build sees it: the warehouse path is the work file dbt writes."""
    with warehouse_env(WarehouseStore.from_settings(Settings.from_env()).work_path):
        yield


def ensure_manifest(project: DbtProject) -> Path:
    """Parse the dbt project when needed; return the manifest path."""
    with profile_of_builds():
        if project.preparer.using_dagster_dev():
            project.prepare_if_dev()
        elif manifest_is_stale(project):
            project.preparer.prepare(project)
        else:
            return project.manifest_path
        _profile_stamp(project).write_text(_parsed_for(), encoding="utf-8")
    return project.manifest_path


def _build_project() -> DbtProject:
    Settings.from_env().export_env()
    ensure_dbt_on_path()
    # DBT_TARGET_PATH lets a developer or a test keep its artifacts away from others'.
    target_path = os.environ.get("DBT_TARGET_PATH") or "target"
    # CALLMETRICS_TARGET=spark: parsed, built and tested with `--target spark` (the resource
    # takes the project's target), so the asset graph is the one built
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR,
        target_path=target_path,
        profiles_dir=DBT_PROJECT_DIR,
        target=target_of_builds(Settings.from_env()),
    )
    ensure_manifest(project)
    return project


def project_schema(dbt_resource_props: Mapping[str, Any]) -> str:
    """A node's schema as the project names it (`marts`), whatever the engine's schema naming
    makes of it (on Spark `<CALLMETRICS_SPARK_SCHEMA>_marts`): asset keys, groups and the marts
    the publish step waits for are the same on every engine."""
    custom = (dbt_resource_props.get("config") or {}).get("schema")
    return str(custom or dbt_resource_props["schema"])


class CallmetricsTranslator(DagsterDbtTranslator):
    """Asset keys `<schema>/<name>` (`marts/mart_metrics`), raw sources `raw/<table>`.

    Groups follow the schema (staging, intermediate, marts, reference, snapshots, quality), so
    the asset graph reads left to right in the order the data flows.
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([RAW_GROUP, dbt_resource_props["name"]])
        return AssetKey([project_schema(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return RAW_GROUP
        return project_schema(dbt_resource_props)


DBT_PROJECT = _build_project()
TRANSLATOR = CallmetricsTranslator(
    settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True, enable_source_tests_as_checks=True
    )
)
