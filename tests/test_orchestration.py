"""The Dagster definitions (callmetrics.orchestration.definitions) and the `nightly` job end to end.

- The definitions load and hold the nightly job, its schedule, every dbt node as an asset and
  every dbt test as an asset check (compared with the dbt manifest, not with a count).
- The nightly job, run in process for one partition on a small generated raw directory,
  materializes every asset of the definitions and every check passes.
- A failing dbt test stops the run before publishing and exporting: the live warehouse version
  stays the same, the export step never starts, and `callmetrics build` says so in one line.

Each pipeline run costs tens of seconds, so the tests that run one build a small raw directory
(1,500 calls over 10 days) and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from callmetrics.settings import NIGHTLY_AT_ENV, PROJECT_ROOT, Settings, SettingsError
from tests.conftest import build, pointed_at

NIGHTLY_JOB = "nightly"
SCHEDULE = "nightly_schedule"
EXPORT_STEP = "exports__metrics_payloads"
PUBLISH_STEP = "warehouse__published_version"
SMALL_CALLS = 1_500
SMALL_DAYS = 10


# ------------------------------------------------------------------------------ helpers


def definitions_for(settings: Settings) -> Any:
    """The definitions for `settings`, as Dagster loads them (parsing the dbt project if
    needed)."""
    from dagster import BetaWarning, PreviewWarning

    from callmetrics.orchestration.definitions import build_definitions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        return build_definitions(settings)


@pytest.fixture(scope="module")
def definitions() -> Any:
    """The definitions of the environment's settings (what `dagster dev` loads)."""
    return definitions_for(Settings.from_env())


@pytest.fixture(scope="module")
def manifest(definitions: Any) -> dict[str, Any]:
    """The dbt manifest the definitions were built from, read from disk again."""
    from callmetrics.orchestration.definitions import project_for

    path = project_for(Settings.from_env()).manifest_path
    return json.loads(Path(path).read_text(encoding="utf-8"))


def dbt_nodes(manifest: dict[str, Any], *kinds: str) -> list[dict[str, Any]]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] in kinds]


def asset_key_of(node: dict[str, Any]) -> str:
    """The asset key the project promises for a dbt node: `<schema>/<name>` (the translator's
    documented rule, restated here rather than called)."""
    return f"{node['schema']}/{node['name']}"


def generate_small_raw(raw: Path, seed: int) -> None:
    from callmetrics.generation.base import generate_raw

    generate_raw(raw, calls=SMALL_CALLS, days=SMALL_DAYS, orgs=4, resellers=2, seed=seed,
                 dirt_rate=0.03)


def newest_call_day(raw: Path) -> date:
    """The UTC day of the newest call in a raw directory: the partition a nightly run for this
    extract is for (the day that just ended)."""
    con = duckdb.connect()
    try:
        con.execute("set timezone = 'UTC'")
        (newest,) = con.execute(
            "select max(started_at) from read_parquet(?, union_by_name = true)",
            [str(raw / "calls" / "**" / "*.parquet")],
        ).fetchone()
    finally:
        con.close()
    return newest.date()


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Dagster instance of the test's own, so its run history can be read back."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield home


# ------------------------------------------------------------------- (a) the definitions


def test_definitions_load_with_the_nightly_job(definitions: Any) -> None:
    from dagster import Definitions

    defs = definitions
    Definitions.validate_loadable(defs)
    job = defs.resolve_job_def(NIGHTLY_JOB)
    graph = defs.resolve_asset_graph()
    # the job materializes every asset the definitions can materialize, and runs every check
    assert job.asset_layer.selected_asset_keys == graph.materializable_asset_keys
    assert job.asset_layer.asset_graph.asset_check_keys == graph.asset_check_keys
    assert job.partitions_def is not None
    assert job.partitions_def.timezone == "UTC"
    # the publish and export assets are part of it, downstream of the dbt models
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert {"warehouse/published_version", "exports/metrics_payloads"} <= keys


def test_schedule_runs_the_nightly_job_at_two_utc_by_default(definitions: Any) -> None:
    from dagster import DefaultScheduleStatus

    if os.environ.get(NIGHTLY_AT_ENV):
        pytest.skip(f"{NIGHTLY_AT_ENV} is set in this environment")
    schedule = definitions.resolve_schedule_def(SCHEDULE)
    assert schedule.job_name == NIGHTLY_JOB
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "UTC"  # explicit, not the host's
    assert schedule.cron_schedule == "0 2 * * *"


def test_schedule_time_comes_from_the_environment() -> None:
    """CALLMETRICS_NIGHTLY_AT moves the schedule: loaded in a fresh interpreter, as `dagster dev`
    would load it."""
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from callmetrics.orchestration.definitions import defs\n"
        "s = defs().resolve_schedule_def('nightly_schedule')\n"
        "print(s.cron_schedule, s.execution_timezone, sep='|')\n"
    )
    env = {**os.environ, "CALLMETRICS_NIGHTLY_AT": "03:45"}
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "45 3 * * *|UTC"


@pytest.mark.parametrize("text", ["24:00", "2am", "02:60", "-1:30"])
def test_a_bad_schedule_time_is_refused_with_the_variable_named(text: str) -> None:
    with pytest.raises(SettingsError, match=f"^{NIGHTLY_AT_ENV}='{text}' is not a time of day"):
        Settings.from_env({NIGHTLY_AT_ENV: text})


def test_every_dbt_node_is_an_asset(definitions: Any, manifest: dict[str, Any]) -> None:
    graph = definitions.resolve_asset_graph()
    materializable = {k.to_user_string() for k in graph.materializable_asset_keys}
    models = dbt_nodes(manifest, "model")
    assert models, "the manifest lists no model"
    expected = {asset_key_of(n) for n in dbt_nodes(manifest, "model", "seed", "snapshot")}
    missing = expected - materializable
    assert not missing, f"dbt nodes without an asset: {sorted(missing)}"
    # and nothing else than the dbt nodes, the published version and the export
    extra = materializable - expected
    assert extra == {"warehouse/published_version", "exports/metrics_payloads"}
    # the raw sources are external assets (observed, never materialized by the job)
    sources = {f"raw/{s['name']}" for s in manifest["sources"].values()}
    external = {k.to_user_string() for k in graph.external_asset_keys}
    assert sources <= external


def test_every_dbt_test_is_an_asset_check(definitions: Any, manifest: dict[str, Any]) -> None:
    graph = definitions.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    tests = dbt_nodes(manifest, "test")
    assert tests, "the manifest lists no dbt test"
    by_name = {name: key for key, name in checks}
    missing = sorted(t["name"] for t in tests if t["name"] not in by_name)
    assert not missing, f"dbt tests that are no asset check: {missing}"
    for test in tests:
        # a generic test is a check of the node it tests; a singular one reading several
        # models names the one it belongs to in meta.dagster.ref
        attached = test.get("attached_node")
        ref = (test.get("config", {}).get("meta", {}).get("dagster", {}).get("ref") or {})
        if attached:
            want = asset_key_of(manifest["nodes"][attached])
        elif ref:
            node = next(n for n in manifest["nodes"].values() if n["name"] == ref["name"])
            want = asset_key_of(node)
        else:
            (only,) = test["depends_on"]["nodes"]
            want = asset_key_of(manifest["nodes"][only])
        assert by_name[test["name"]] == want, test["name"]


# ------------------------------------------------------- (b) the whole graph, materialized


def test_nightly_job_materializes_every_asset_and_every_check_passes(
    definitions: Any, tmp_path: Path
) -> None:
    from dagster import DagsterInstance

    raw = tmp_path / "raw"
    generate_small_raw(raw, seed=31)
    warehouse = tmp_path / "warehouse" / "callmetrics.duckdb"
    warehouse.parent.mkdir()
    day = newest_call_day(raw)
    defs = definitions_for(Settings(raw_dir=raw, warehouse=warehouse))
    graph = defs.resolve_asset_graph()
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(NIGHTLY_JOB).execute_in_process(
            instance=instance, partition_key=day.isoformat(), raise_on_error=False
        )
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, f"the nightly run failed in {failed}"

    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == set(graph.materializable_asset_keys), (
        f"not materialized: {sorted(k.to_user_string() for k in set(graph.materializable_asset_keys) - materialized)}"  # noqa: E501
    )
    evaluations = {e.asset_check_key: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(graph.asset_check_keys), (
        "checks not evaluated: "
        f"{sorted(k.to_user_string() for k in set(graph.asset_check_keys) - set(evaluations))}"
    )
    failing = sorted(k.to_user_string() for k, e in evaluations.items() if not e.passed)
    assert not failing, f"checks that did not pass: {failing}"

    # what the materializations promise is there: a live warehouse with the marts, and the
    # payloads of the run's day (one per organization and reseller, plus all organizations)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        calls = con.execute("select count(*) from marts.fct_calls").fetchone()[0]
        orgs = con.execute("select count(*) from marts.dim_organizations").fetchone()[0]
        resellers = con.execute("select count(*) from marts.dim_resellers").fetchone()[0]
    finally:
        con.close()
    assert calls > 0
    for window in ("day", "trailing-30-days"):
        folder = warehouse.parent / "exports" / day.isoformat() / window
        payloads = [p for p in folder.rglob("*.json") if p.name != "manifest.json"]
        assert len(payloads) == orgs + resellers + 1, (window, sorted(p.name for p in payloads))


# ------------------------------------------------------ (c) a failing dbt test stops the run


def add_copies_to_a_loaded_file(raw: Path, rows: int) -> Path:
    """Rewrite an already-delivered telemetry file with `rows` more rows (copies of its own
    events). The telemetry stream is append-only: a loaded file is never read again, so these
    rows never reach the warehouse and the raw events no longer reconcile."""
    target = sorted((raw / "telemetry_events").rglob("*.parquet"))[0]
    scratch = target.with_suffix(".rewritten")
    con = duckdb.connect()
    try:
        con.execute(
            "copy (select * from read_parquet($f) union all "
            "(select * from read_parquet($f) order by event_id nulls last limit $n)) "
            "to '" + str(scratch).replace("'", "''") + "' (format parquet)",
            {"f": str(target), "n": rows},
        )
    finally:
        con.close()
    scratch.replace(target)
    return target


def export_files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_failing_dbt_test_stops_publishing_and_the_export(
    definitions: Any, tmp_path: Path, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dagster import DagsterInstance, DagsterRunStatus

    from callmetrics.cli import main
    from callmetrics.publishing import WarehouseStore

    raw = tmp_path / "raw"
    generate_small_raw(raw, seed=37)
    warehouse = tmp_path / "warehouse" / "callmetrics.duckdb"
    build(raw, warehouse)
    store = WarehouseStore(warehouse)
    live_before = store.live()
    assert live_before is not None
    versions_before = [v.name for v in store.versions()]
    link_before = os.readlink(warehouse)
    exports = warehouse.parent / "exports"
    exported_before = export_files(exports)
    assert exported_before, "the good build exported nothing"

    add_copies_to_a_loaded_file(raw, rows=5)
    capsys.readouterr()
    with pointed_at(raw, warehouse):
        status = main(["build"])
    err = capsys.readouterr().err

    assert status != 0
    assert "Traceback" not in err
    # one line says what failed, last, after the progress lines
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("callmetrics build: error")]
    assert errors == lines[-1:], err
    assert "assert_raw_events_reconcile" in lines[-1]
    assert "the export did not run" in lines[-1]

    # nothing published: the same live version, the same link, no new version
    store = WarehouseStore(warehouse)
    assert store.live() == live_before
    assert [v.name for v in store.versions()] == versions_before
    assert os.readlink(warehouse) == link_before
    # the export step never started, and no payload file was written or touched
    assert export_files(exports) == exported_before
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=1)
        assert runs and runs[0].status == DagsterRunStatus.FAILURE
        stats = {s.step_key: s.status for s in instance.get_run_step_stats(runs[0].run_id)}
    assert stats.get("dbt_models") is not None and stats["dbt_models"].value == "FAILURE"
    for step in (PUBLISH_STEP, EXPORT_STEP):
        assert stats.get(step) is None or stats[step].value == "SKIPPED", (step, stats)
