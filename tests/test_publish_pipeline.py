"""Write, audit, publish with the real pipeline: `callmetrics build` processes, real readers,
SIGKILL at several points, a failing dbt test, rollback.

The raw data is the hand-made fixture (tests/fixtures/handmade.py: 15 raw call rows, 7 counted,
8 left out) plus increments written below, whose counts are worked out in their comments.
Every build is a real process in its own session, so a kill takes dbt's processes with it, as a
service manager stopping the nightly job would.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tests.fixtures.handmade import (
    AGENTS,
    CALLS,
    COUNTED_CALLS,
    RAW_CALL_ROWS,
    write_handmade_raw,
)
from tests.fixtures.raw_builder import ts, write_table

PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Project:
    raw: Path
    link: Path
    target: Path
    root: Path

    @property
    def versions(self) -> Path:
        return self.link.with_name("callmetrics.versions")

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CALLMETRICS_RAW_DIR=str(self.raw),
            CALLMETRICS_WAREHOUSE=str(self.link),
            DBT_TARGET_PATH=str(self.target),
            DAGSTER_HOME=str(self.root / "dagster_home"),
            CALLMETRICS_FAULT_POINT="",
        )
        env.update(extra)
        return env

    def manifest(self) -> dict:
        return json.loads((self.versions / "manifest.json").read_text())

    def live_name(self) -> str:
        return Path(os.readlink(self.link)).parent.name  # vNNNNNN/callmetrics.duckdb

    def fingerprint(self) -> tuple[str, str, str, str]:
        """What readers see: the link, the live file's bytes, the Parquet pointer and files."""
        parquet = self.link.with_name("callmetrics.parquet") / "current"
        digest = hashlib.sha256()
        for file in sorted(parquet.rglob("*.parquet")):
            digest.update(file.read_bytes())
        return (
            os.readlink(self.link),
            hashlib.sha256(self.link.read_bytes()).hexdigest(),
            os.readlink(parquet),
            digest.hexdigest(),
        )


def make_project(tmp_path: Path) -> Project:
    root = tmp_path
    (root / "dagster_home").mkdir()
    return Project(
        raw=write_handmade_raw(root / "raw"),
        link=root / "warehouse" / "callmetrics.duckdb",
        target=root / "target",
        root=root,
    )


def build(
    project: Project, *args: str, fault: str = "", kill_at: str | None = None
) -> tuple[int, str]:
    """Run `callmetrics build` as its own process; with `kill_at`, SIGKILL its whole process
    group as soon as dbt's log shows that text. Returns (exit status, standard error)."""
    err_path = project.root / "build-stderr.txt"
    with open(err_path, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "callmetrics.cli", "build", *args],
            cwd=PROJECT,
            env=project.env(CALLMETRICS_FAULT_POINT=fault),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        if kill_at is not None:
            _kill_when_logged(process, project.target, kill_at)
        status = process.wait(timeout=600)
    return status, err_path.read_text()


def _kill_when_logged(process: subprocess.Popen[bytes], target: Path, text: str) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        for log in target.glob("*/dbt.log"):
            if text in log.read_text(errors="replace"):
                os.killpg(process.pid, signal.SIGKILL)
                return
        time.sleep(0.05)
    raise AssertionError(f"the build ended before dbt logged {text!r}")


def assert_reconciles(project: Project, not_yet_written: tuple[Path, ...] = ()) -> int:
    """Nothing is lost: raw call rows = counted calls + calls left out (row-level reasons),
    in the live version. Returns the counted calls.

    `not_yet_written`: raw calls files the live version was built without (after a rollback,
    the files of the nights after it); the version reconciles with the raw data it saw."""
    raw_rows = sum(
        pq.read_metadata(f).num_rows
        for f in (project.raw / "calls").rglob("*.parquet")
        if f not in not_yet_written
    )
    with duckdb.connect(str(project.link), read_only=True) as con:
        counted, left_out, in_marts = con.execute(
            "select (select count(*) from marts.fct_calls), "
            "(select sum(row_count) from quality.dq_left_out_rows "
            " where source_table = 'calls' and is_row_level), "
            "(select sum(total_calls) from marts.mart_metrics)"
        ).fetchone()  # type: ignore[misc]
    assert raw_rows == counted + left_out
    assert in_marts == counted
    return int(counted)


# -- increments ------------------------------------------------------------------------------


def _call(call_id: str, org: str, agent: str | None, start: str, seconds: int | None,
          outcome: str | None) -> dict:  # fmt: skip
    """An ended call (in progress when `seconds` is None), updated a minute after it ends."""
    started = ts(start)
    ended = None if seconds is None else started + timedelta(seconds=seconds)
    return {"id": call_id, "organization_id": org, "agent_id": agent, "started_at": started,
            "ended_at": ended, "outcome": outcome,
            "updated_at": (ended or started) + timedelta(minutes=1)}  # fmt: skip


def write_increment_1(raw: Path) -> None:
    """Night of 2025-01-12: 5 raw call rows, 3 of them newly counted (10 counted in all).

    - i1-a, i1-b, i1-c: three ended valid calls (counted);
    - i1-d: in progress (left out);
    - c-6 v2: a new version of a counted call (c-6 stays counted once; its v1 becomes
      superseded, one more row left out).
    Agent a-2 is renamed Ben -> Benjamin in the agents extract (which is current state: the
    file is replaced).
    """
    day = "2025-01-12 "
    c6 = _call("c-6", "org-2", "a-3", "2025-01-10 10:00:00", 180, "resolved")
    c6["updated_at"] = ts(day + "13:00:00")
    write_table(raw, "calls", [
        _call("i1-a", "org-1", "a-1", day + "09:00:00", 120, "resolved"),
        _call("i1-b", "org-2", "a-3", day + "10:00:00", 60, "abandoned"),
        _call("i1-c", "org-3", "a-5", day + "11:00:00", 300, "transferred"),
        _call("i1-d", "org-1", "a-1", day + "12:00:00", None, None),
        c6,
    ], part="extract=2025-01-12/part-0.parquet")  # fmt: skip
    agents = [dict(a, name="Benjamin") if a["id"] == "a-2" else a for a in AGENTS]
    write_table(raw, "agents", agents)


def write_increment_2(raw: Path) -> Path:
    """Night of 2025-01-13: 2 more counted calls (12 in all); agent a-2 is hard-deleted (absent
    from the agents extract) while one of the new calls names it. The warehouse must remember
    its last name, Benjamin, which only the snapshot taken on 2025-01-12 saw. Returns the new
    calls file."""
    day = "2025-01-13 "
    calls = write_table(raw, "calls", [
        _call("i2-a", "org-1", "a-1", day + "08:00:00", 60, "resolved"),
        _call("i2-b", "org-1", "a-2", day + "08:30:00", 600, "resolved"),
    ], part="extract=2025-01-13/part-0.parquet")  # fmt: skip
    write_table(raw, "agents", [a for a in AGENTS if a["id"] != "a-2"])
    return calls


def write_conflicting_call_copy(raw: Path) -> Path:
    """A corrupt extract: a second calls file holds call c-2's latest version (same id and
    updated_at) with another outcome, resolved instead of transferred, as if the platform had
    changed the row without a new updated_at. Rows sharing id and updated_at must be identical
    copies (raw-sources.md), so which row is the call cannot be told: the dbt test
    assert_held_call_versions_are_unambiguous fails. Returns the file."""
    c2 = next(call for call in CALLS if call["id"] == "c-2")
    assert c2["outcome"] == "transferred"
    return write_table(
        raw, "calls", [dict(c2, outcome="resolved")], part="extract=bad/part-0.parquet"
    )


# -- readers ---------------------------------------------------------------------------------

READER = textwrap.dedent(
    """
    import duckdb, json, os, sys, time
    link, mode, out, stop = sys.argv[1:5]
    query = (
        "select v.version, (select sum(total_calls) from marts.mart_metrics), "
        "(select sum(total_calls) from marts.mart_resolution_breakdown), "
        "(select count(*) from marts.fct_calls) from meta.warehouse_version v"
    )
    con = duckdb.connect(link, read_only=True) if mode == "held" else None
    with open(out, "w") as log:
        while not os.path.exists(stop):
            try:
                if mode == "held":
                    row = con.execute(query).fetchone()
                else:
                    with duckdb.connect(link, read_only=True) as fresh:
                        row = fresh.execute(query).fetchone()
                answer = [row[0], int(row[1]), int(row[2]), row[3]]
                log.write(json.dumps({"answer": answer}) + "\\n")
            except Exception as exc:
                log.write(json.dumps({"error": repr(exc)}) + "\\n")
            log.flush()
            time.sleep(0.02)
    """
)


def start_reader(project: Project, mode: str) -> tuple[subprocess.Popen[bytes], Path]:
    out = project.root / f"reader-{mode}.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", READER, str(project.link), mode, str(out),
         str(project.root / "stop-readers")]
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().strip()):
        assert time.monotonic() < deadline and process.poll() is None, "the reader did not start"
        time.sleep(0.05)
    return process, out


def reader_answers(out: Path) -> list[list]:
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    errors = [line["error"] for line in lines if "error" in line]
    assert errors == [], errors[:3]
    return [line["answer"] for line in lines]


# -- the scenarios -----------------------------------------------------------------------------


def test_readers_see_only_complete_versions_and_rollback_restores_the_previous(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    status, err = build(project)
    assert status == 0, err
    assert project.live_name() == "v000001"
    assert assert_reconciles(project) == COUNTED_CALLS

    held, held_out = start_reader(project, "held")
    fresh, fresh_out = start_reader(project, "fresh")
    try:
        status, err = build(project, "--full-refresh")  # a full build while readers read
        assert status == 0, err
        assert project.live_name() == "v000002"
        write_increment_1(project.raw)
        status, err = build(project)  # an increment while readers read
        assert status == 0, err
        assert project.live_name() == "v000003"
        time.sleep(0.5)  # let the fresh reader see v000003
    finally:
        (project.root / "stop-readers").touch()
        held.wait(timeout=60)
        fresh.wait(timeout=60)

    expected = {"v000001": 7, "v000002": 7, "v000003": 10}  # counted calls of each version
    manifest = {v["number"]: v for v in project.manifest()["history"]}
    assert [manifest[n]["method"] for n in (1, 2, 3)] == ["fresh", "copy", "copy"]
    for out in (held_out, fresh_out):
        answers = reader_answers(out)
        for version, metrics, breakdown, fct in answers:
            # one version per answer: two marts and the fact table agree with that version
            assert metrics == breakdown == fct == expected[version]
        seen = [a[0] for a in answers]
        assert seen == sorted(seen), "a reader went back to an older version"
    held_seen = {a[0] for a in reader_answers(held_out)}
    fresh_seen = {a[0] for a in reader_answers(fresh_out)}
    assert held_seen == {"v000001"}  # an open connection keeps the version it opened
    assert fresh_seen == {"v000001", "v000002", "v000003"}
    assert assert_reconciles(project) == 10
    v3_bytes = hashlib.sha256(project.link.read_bytes()).hexdigest()

    # No reader holds v000001 any more: the next build reuses its file, brought block by block
    # to the live v000003's bytes first (no night's arrivals applied twice).
    increment_2_calls = write_increment_2(project.raw)
    status, err = build(project)
    assert status == 0, err
    assert project.live_name() == "v000004"
    v4 = project.manifest()["history"][-1]
    assert (v4["method"], v4["base"]) == ("reuse", 3)  # the build starts from the live v3
    assert assert_reconciles(project) == 12
    with duckdb.connect(str(project.link), read_only=True) as con:
        assert con.execute(
            "select agent_name, status from marts.dim_agents where agent_id = 'a-2'"
        ).fetchall() == [("Benjamin", "deleted")]
        # every bucket caught up: the mart equals a recomputation from the calls
        assert (
            con.execute(
                "select organization_id, bucket_start, total_calls, duration_us_sum "
                "from marts.mart_metrics except "
                "select organization_id, bucket_start, count(*), sum(duration_us) "
                "from marts.fct_calls group by all"
            ).fetchall()
            == []
        )
        assert con.execute("select sum(total_calls) from marts.mart_metrics").fetchone() == (12,)

    status = subprocess.run(
        [sys.executable, "-m", "callmetrics.cli", "rollback"], cwd=PROJECT, env=project.env()
    ).returncode
    assert status == 0
    assert project.live_name() == "v000003"
    assert hashlib.sha256(project.link.read_bytes()).hexdigest() == v3_bytes
    # v000003 was built before increment 2 arrived: it reconciles with the raw calls it saw,
    # and the 2 raw rows of increment 2 are in no version that is live now
    assert assert_reconciles(project, not_yet_written=(increment_2_calls,)) == 10
    assert pq.read_metadata(increment_2_calls).num_rows == 2


def test_killed_and_failed_builds_never_touch_the_published_warehouse(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    status, err = build(project)
    assert status == 0, err
    before = project.fingerprint()

    for kill_at in (
        "START sql incremental model intermediate.int_calls",  # during models
        "START test primary_key_fct_calls_call_id",  # during tests, marts already rewritten
    ):
        # the same raw files: a plain build would find nothing arrived and run nothing
        status, _err = build(project, "--full-refresh", kill_at=kill_at)
        assert status == -signal.SIGKILL
        assert (project.versions / "work" / "callmetrics.duckdb").exists()
        assert project.fingerprint() == before, kill_at
        assert assert_reconciles(project) == COUNTED_CALLS

    # every test passed, then killed
    status, _err = build(project, "--full-refresh", fault="before_publish")
    assert status == -signal.SIGKILL
    assert project.fingerprint() == before
    assert assert_reconciles(project) == COUNTED_CALLS

    bad = write_conflicting_call_copy(project.raw)
    status, err = build(project)
    assert status == 1
    lines = [line for line in err.splitlines() if line.startswith("callmetrics build: error:")]
    assert len(lines) == 1, err
    assert "assert_held_call_versions_are_unambiguous" in lines[0]
    assert "not published" in lines[0] and "v000001" in lines[0]
    assert project.fingerprint() == before
    # v000001 keeps serving what it was built from: the raw calls without the bad file
    assert assert_reconciles(project, not_yet_written=(bad,)) == COUNTED_CALLS

    # the next run recovers by itself: no clean-up, the bad extract removed (the raw files are
    # v000001's again: a plain build would find nothing arrived)
    bad.unlink()
    status, err = build(project, "--full-refresh")
    assert status == 0, err
    assert project.live_name() == "v000002"
    assert project.manifest()["history"][-1]["method"] == "copy"
    assert assert_reconciles(project) == RAW_CALL_ROWS - 8
    assert sorted(p.parent.name for p in project.versions.glob("*/*.duckdb")) == [
        "v000001",
        "v000002",
    ]
    assert not list(project.link.parent.rglob("*.wal"))
