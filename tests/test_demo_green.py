"""The demo stays green: data generated with the command line's defaults ends yesterday, and
the schedule's first tick (on by default) runs the nightly job with every freshness check
passing (issue 16, item 6)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb
from dagster import DagsterInstance, build_schedule_context

from tests.clirun import cli
from tests.conftest import pointed_at


def test_default_demo_data_ends_yesterday_and_the_first_tick_passes_its_checks(
    tmp_path: Path,
) -> None:
    raw, warehouse = tmp_path / "raw", tmp_path / "wh" / "callmetrics.duckdb"
    now = datetime.now(UTC)
    yesterday = now.date() - timedelta(days=1)
    done = cli(raw, warehouse, "generate", "--out", str(raw), "--calls", "800", "--days", "5",
               "--orgs", "3", "--resellers", "1", "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summaries = [json.loads(p.read_text()) for p in raw.glob("_*.json")]
    assert [s["params"]["end_date"] for s in summaries if "params" in s] == [yesterday.isoformat()]
    with duckdb.connect() as con:
        con.execute("set timezone = 'UTC'")
        row = con.execute(
            f"select max(started_at) from read_parquet('{raw}/calls/**/*.parquet', "
            "union_by_name = true)"
        ).fetchone()
    assert row is not None
    newest = row[0]
    # the last local day is yesterday: in UTC the newest call is within a day of its end
    assert datetime.combine(yesterday, time(), UTC) <= newest
    assert newest < datetime.combine(yesterday, time(), UTC) + timedelta(days=2)

    from callmetrics.orchestration.definitions import NIGHTLY_JOB, defs

    with pointed_at(raw, warehouse):
        loaded = defs()  # as `dagster dev` loads them, from the environment
    schedule = loaded.resolve_schedule_def("nightly_schedule")
    assert schedule.default_status.value == "RUNNING"  # on as soon as the daemon runs
    with DagsterInstance.ephemeral() as instance:
        tick_at = datetime.combine(now.date(), time(2, 0), UTC)
        context = build_schedule_context(instance=instance, scheduled_execution_time=tick_at)
        requests = list(schedule.evaluate_tick(context).run_requests or [])
        assert [r.partition_key for r in requests] == [yesterday.isoformat()]
        result = loaded.resolve_job_def(NIGHTLY_JOB).execute_in_process(
            instance=instance, partition_key=requests[0].partition_key, raise_on_error=False
        )
    assert result.success
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    names = {e.check_name for e in evaluations}
    assert "calls_fresh" in names
    assert [e.check_name for e in evaluations if not e.passed] == []
    assert os.readlink(warehouse) == "callmetrics.versions/v000001/callmetrics.duckdb"
