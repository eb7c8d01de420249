"""The dbt project as Dagster sees it: one `DbtProject`, a current manifest, asset keys and groups.

Nothing happens at import. `dbt_project(settings)` (called while the definitions are built)
makes sure `target/manifest.json` exists and is current:

- under `dagster dev` the project is re-parsed at every load;
- anywhere else (`callmetrics build`, pytest, `dagster definitions validate`) the manifest is
  re-parsed with `dbt parse` when it is missing, older than any file of the dbt project, or was
  parsed with other `--vars`.

dbt receives the warehouse it writes and the raw directory as `--vars` (`Settings.dbt_vars`),
never through this process's environment. dbt only ever writes the warehouse's work file
(`callmetrics.publishing`), so the project is parsed with the vars every build runs with: dbt's
partial parsing keeps working from one build to the next.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster import AssetKey
from dagster._utils import run_with_concurrent_update_guard
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
)
from dagster_dbt.dbt_project import using_dagster_dev
from packaging import version

from callmetrics.settings import DBT_PROJECT_DIR

# Folders and files whose changes change the manifest.
_DBT_INPUT_DIRS = ("models", "snapshots", "seeds", "macros", "tests/dbt", "analyses")
_DBT_INPUT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")
RAW_GROUP = "raw"
PARSE_WAIT_SECONDS = 900


def dbt_executable() -> str:
    """`dbt` beside this interpreter (a virtualenv need not be on PATH), else from PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else shutil.which("dbt") or "dbt"


class ProjectDbtCli(DbtCliResource):
    """`DbtCliResource` without two fixed costs paid before every dbt call that callmetrics has
    no use for (measured: 4-5 s a call on an idle machine, 39 s under load):

    - the version of the dbt beside this interpreter is the installed dbt-core's, read from the
      package metadata instead of a `dbt --version` subprocess (any other dbt still gets one);
    - no dbt adapter is opened inside this process (dagster-dbt does so, importing the adapter
      and loading the profile and project, only to fetch row counts or column metadata, which
      the assets do not ask for): the dbt subprocess does all the work.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) == Path(sys.executable).parent / "dbt":
            return version.parse(metadata.version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]

    def _initialize_dbt_core_adapter(self, args: Any) -> Any:
        return None


def dbt_resource(project: DbtProject) -> DbtCliResource:
    return ProjectDbtCli(
        project_dir=project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
    )


def vars_arg(dbt_vars: Mapping[str, str]) -> list[str]:
    """`--vars` of a dbt call, written the same way every time (sorted JSON)."""
    return ["--vars", json.dumps(dict(dbt_vars), sort_keys=True)]


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


def _parse_stamp(project: DbtProject) -> Path:
    """Names the `--vars` the manifest (and dbt's partial parsing state) was parsed with."""
    return project.manifest_path.with_name("parsed_with_vars.json")


def manifest_is_stale(project: DbtProject, dbt_vars: Mapping[str, str]) -> bool:
    """True when the manifest is missing, older than any input of the dbt project, or parsed
    with other vars (another warehouse or raw directory)."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    stamp = _parse_stamp(project)
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != _parsed_for(project, dbt_vars):
        return True
    built = manifest.stat().st_mtime
    return any(mtime > built for mtime in _dbt_input_mtimes(project.project_dir))


def _parsed_for(project: DbtProject, dbt_vars: Mapping[str, str]) -> str:
    """The `--vars`, and the dbt target when it is not the profile's default (Spark's graph
    differs: callmetrics.spark), a manifest is parsed for."""
    parsed = vars_arg(dbt_vars)[1]
    return parsed if project.target is None else f"{parsed}\ntarget={project.target}"


def _parse(project: DbtProject, dbt_vars: Mapping[str, str]) -> None:
    """`dbt parse` into a folder of its own, then its manifest, partial-parsing state and the
    stamp replace the target's in one rename each: a reader (another process building its
    definitions) never sees a file half written."""
    target = project.manifest_path.parent
    scratch = target / f".parse-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    args = ["parse", "--quiet", *vars_arg(dbt_vars)]
    try:
        dbt_resource(project).cli(args, target_path=scratch).wait()
        stamp = scratch / _parse_stamp(project).name
        stamp.write_text(_parsed_for(project, dbt_vars), encoding="utf-8")
        for name in ("partial_parse.msgpack", stamp.name, project.manifest_path.name):
            if (scratch / name).exists():
                os.replace(scratch / name, target / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def dbt_project(
    dbt_vars: Mapping[str, str], target_path: str | None = None, target: str | None = None
) -> DbtProject:
    """The dbt project with a current manifest for builds run with `dbt_vars`.

    `target_path` (default: $DBT_TARGET_PATH, else `target`) lets a developer or a test keep
    its artifacts away from others'. `target` (`spark`, callmetrics.spark.build) is the dbt
    target every call on the project uses (the resource takes the project's); None: the
    profile's default (DuckDB).
    """
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR,
        target_path=target_path or os.environ.get("DBT_TARGET_PATH") or "target",
        profiles_dir=DBT_PROJECT_DIR,
        target=target,
    )
    if using_dagster_dev() or manifest_is_stale(project, dbt_vars):
        # one parse at a time (pytest workers, `dagster dev` beside a build); a parse on a busy
        # machine can take minutes, so wait as long as a build would
        run_with_concurrent_update_guard(
            project.manifest_path,
            _parse,
            guard_timeout_seconds=PARSE_WAIT_SECONDS,
            project=project,
            dbt_vars=dbt_vars,
        )
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


def translator() -> CallmetricsTranslator:
    return CallmetricsTranslator(
        settings=DagsterDbtTranslatorSettings(
            enable_asset_checks=True, enable_source_tests_as_checks=True
        )
    )
