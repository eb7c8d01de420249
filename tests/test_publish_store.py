"""The version store on its own: slots, publish, rollback, crashes inside publish.

A "build" here is a few real DuckDB statements instead of dbt (the store does not care what
writes the work file), so these tests take seconds; tests/test_publish_pipeline.py drives the
real `callmetrics build`. Each build appends one night to a snapshot table (state a build cannot
recompute) and rewrites the marts from a night counter, so the numbers a version must hold are
known in advance: after night n, mart_a and mart_b both hold n rows summing to n*(n+1)/2.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from callmetrics.errors import UserError
from callmetrics.publishing import WarehouseStore
from callmetrics.publishing.duck import storage_version
from callmetrics.publishing.files import remove_tree

PROJECT = Path(__file__).resolve().parents[1]


def fake_build(path: Path) -> int:
    """One night's build into the work file; returns the night number it built."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists snapshots")
        con.execute("create table if not exists snapshots.nights (night integer)")
        seen = con.execute("select count(*) from snapshots.nights").fetchone()
        night = int(seen[0]) + 1 if seen else 1
        con.execute("insert into snapshots.nights values (?)", [night])
        con.execute("create schema if not exists marts")
        for mart in ("mart_a", "mart_b"):
            con.execute(
                f"create or replace table marts.{mart} as "
                "select range + 1 as n from range((select count(*) from snapshots.nights))"
            )
        con.execute("create or replace table marts.fct_rows as select 1 as x")
    return night


def night_of(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(
            "select (select count(*) from marts.mart_a), (select sum(n) from marts.mart_b), "
            "(select count(*) from snapshots.nights)"
        ).fetchone()
    assert row is not None
    count, total, nights = row
    assert total == count * (count + 1) // 2, "the marts disagree"
    assert nights == count, "the snapshot lost a night"
    return int(count)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(store: WarehouseStore) -> str:
    """Prepare the work file, build one night into it, publish it (as the nightly job does)."""
    work = store.prepare_work()
    fake_build(work.path)
    store.publish_work()
    return work.method


@pytest.fixture()
def store(tmp_path: Path) -> WarehouseStore:
    return WarehouseStore(tmp_path / "wh" / "callmetrics.duckdb", keep=3)


def test_first_build_publishes_a_compatible_checkpointed_version(store: WarehouseStore) -> None:
    assert store.live() is None
    assert build(store) == "fresh"
    assert store.link.is_symlink()
    assert os.readlink(store.link) == "callmetrics.versions/v000001/callmetrics.duckdb"
    assert night_of(store.link) == 1
    assert storage_version(store.link) == "v1.4.0+"
    assert not list(store.link.parent.rglob("*.wal"))
    assert not store.work_path.exists()
    with duckdb.connect(str(store.link), read_only=True) as con:
        assert con.execute("select version, number, build_method from meta.warehouse_version")
        assert con.fetchall() == [("v000001", 1, "fresh")]
    live = store.live()
    assert live is not None
    assert live.row_counts == {"fct_rows": 1, "mart_a": 1, "mart_b": 1}
    assert set(live.publish_seconds) == {
        "prepare",
        "checkpoint",
        "parquet",
        "parquet_kept",
        "switch",
        "total",
    }
    current = store.parquet_dir / "current"
    assert os.readlink(current) == "v000001"
    # marts only, one folder each; the fact table stays in DuckDB
    assert sorted(p.name for p in current.iterdir()) == ["mart_a", "mart_b"]
    assert pq.read_table(current / "mart_b").column("n").to_pylist() == [1]


def test_builds_reuse_the_oldest_free_version_brought_to_the_live_bytes(
    store: WarehouseStore,
) -> None:
    methods = [build(store) for _ in range(3)]
    assert methods == ["fresh", "copy", "copy"]
    live_path = store.live_path()
    assert live_path is not None
    live_bytes = sha256(live_path)
    work = store.prepare_work()
    # live and previous are never written; the third kept version is free from night 4 on.
    # Its file is brought to the live version's bytes (only differing blocks rewritten), so
    # the build starts from the live state and applies nothing of the nights before twice.
    assert (work.method, work.reused, work.base) == ("reuse", 1, 3)
    assert sha256(work.path) == live_bytes
    assert work.rewritten_bytes is not None
    assert 0 < work.rewritten_bytes <= work.path.stat().st_size
    fake_build(work.path)
    store.publish_work()
    methods += [build(store) for _ in range(2)]
    assert methods == ["fresh", "copy", "copy", "reuse", "reuse"]
    assert [v.name for v in store.versions()] == ["v000004", "v000005", "v000006"]
    assert [v.base for v in store.versions()] == [3, 4, 5]
    # v000004 was written in v000001's file (night 1) yet holds all four nights
    for version, night in zip(store.versions(), (4, 5, 6), strict=True):
        assert night_of(store.version_path(version.number)) == night
    assert night_of(store.link) == 6
    files = sorted(
        str(p.relative_to(store.versions_dir)) for p in store.versions_dir.rglob("*.duckdb")
    )
    assert files == [f"v00000{n}/callmetrics.duckdb" for n in (4, 5, 6)]
    assert sorted(p.name for p in store.parquet_dir.iterdir()) == [
        "current",
        "v000004",
        "v000005",
        "v000006",
    ]


def test_unchanged_marts_keep_their_parquet_file(store: WarehouseStore) -> None:
    build(store)
    build(store)
    first = store.parquet_dir / "v000002"
    # a night that changes mart_b only: mart_a's Parquet copy is the previous file, linked
    work = store.prepare_work()
    with duckdb.connect(str(work.path)) as con:
        con.execute("insert into marts.mart_b values (100)")
    report = store.publish_work()
    assert report.seconds["parquet_kept"] == 1
    second = store.parquet_dir / "v000003"
    a_before, a_after = first / "mart_a" / "part-0.parquet", second / "mart_a" / "part-0.parquet"
    assert a_after.stat().st_ino == a_before.stat().st_ino
    b_before, b_after = first / "mart_b" / "part-0.parquet", second / "mart_b" / "part-0.parquet"
    assert b_after.stat().st_ino != b_before.stat().st_ino
    assert pq.read_table(second / "mart_a").column("n").to_pylist() == [1, 2]
    assert sorted(pq.read_table(second / "mart_b").column("n").to_pylist()) == [1, 2, 100]
    # the shared file outlives the pruning of the version that wrote it
    build(store)
    build(store)
    assert not first.exists() and second.exists()
    assert pq.read_table(second / "mart_a").column("n").to_pylist() == [1, 2]


def hold_open(path: Path) -> subprocess.Popen[str]:
    """A real reader process with a read-only connection open on `path`."""
    code = textwrap.dedent(
        f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r}, read_only=True)
        con.execute("select count(*) from marts.mart_a").fetchall()
        print("open", flush=True)
        sys.stdin.read()
        """
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
    return reader


def test_a_version_held_by_a_reader_is_never_written(store: WarehouseStore) -> None:
    for _ in range(3):
        build(store)
    oldest = store.version_path(1)
    before = sha256(oldest)
    reader = hold_open(oldest)
    try:
        with open(oldest, "rb") as same_inode:
            assert build(store) == "copy"  # v000001 is held: the live version is copied instead
            # pruned (unlinked) after the publish, but its bytes are as the reader opened them
            assert not oldest.exists()
            assert hashlib.sha256(same_inode.read()).hexdigest() == before
        assert night_of(store.link) == 4
    finally:
        reader.communicate("")
    # v2, v3, v4 kept; the next build reuses v2
    assert [v.number for v in store.versions()] == [2, 3, 4]
    assert build(store) == "reuse"
    assert night_of(store.link) == 5


def test_a_failed_build_publishes_nothing_and_the_next_one_recovers(
    store: WarehouseStore,
) -> None:
    assert store.after_failure(None) == "nothing was published (no version is live yet)"
    for _ in range(3):
        build(store)
    link_before, bytes_before = os.readlink(store.link), sha256(store.link)
    live_before = store.live()
    fake_build(store.prepare_work().path)  # a build whose dbt tests then fail: not published
    assert os.readlink(store.link) == link_before
    assert sha256(store.link) == bytes_before
    # what `callmetrics build` prints about it
    assert store.after_failure(live_before) == "not published: v000003 keeps serving"
    assert store.work_path.exists()  # left for inspection until the next build
    assert build(store) == "copy"  # the failed build consumed the free slot; copy the live one
    assert night_of(store.link) == 4
    assert not store.work_path.exists()
    # a run that fails after its publish step (in the export) says what it published
    assert store.after_failure(live_before) == "v000004 was published before the run failed"


def test_rollback_returns_exactly_the_previous_version(store: WarehouseStore) -> None:
    hashes = {}
    for _ in range(3):
        build(store)
        live = store.live()
        assert live is not None
        hashes[live.number] = sha256(store.link)
    now_live, rolled_back = store.rollback()
    assert (now_live.number, rolled_back.number) == (2, 3)
    assert os.readlink(store.link) == "callmetrics.versions/v000002/callmetrics.duckdb"
    assert sha256(store.link) == hashes[2]
    assert os.readlink(store.parquet_dir / "current") == "v000002"
    assert pq.read_table(store.parquet_dir / "current" / "mart_a").num_rows == 2
    store.rollback()
    assert sha256(store.link) == hashes[1]
    with pytest.raises(UserError, match="no earlier published version"):
        store.rollback()
    # the next build starts from the live version (night 1), never from a rolled-back one
    assert build(store) == "copy"
    assert night_of(store.link) == 2
    assert [v.number for v in store.versions()] == [1, 4]
    assert sorted(p.parent.name for p in store.versions_dir.glob("*/*.duckdb")) == [
        "v000001",
        "v000004",
    ]


def test_a_plain_warehouse_file_becomes_the_first_version(tmp_path: Path) -> None:
    link = tmp_path / "callmetrics.duckdb"
    fake_build(link)
    before = sha256(link)
    store = WarehouseStore(link)
    assert build(store) == "copy"
    assert [v.method for v in store.versions()] == ["adopted", "copy"]
    assert sha256(store.version_path(1)) == before
    assert night_of(link) == 2


def run_build_process(store: WarehouseStore, fault: str | None) -> int:
    """A real process that builds and publishes, killed by SIGKILL at `fault`."""
    env = dict(os.environ)
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from callmetrics.publishing import WarehouseStore
        from tests.test_publish_store import fake_build
        store = WarehouseStore(Path({str(store.link)!r}), keep={store.keep}, fault={fault!r})
        fake_build(store.prepare_work().path)
        store.publish_work()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env, check=False)
    return done.returncode


@pytest.mark.parametrize("fault", ["before_publish", "after_parquet", "before_switch"])
def test_a_publish_killed_before_its_switch_leaves_the_live_version_untouched(
    store: WarehouseStore, fault: str
) -> None:
    for _ in range(3):
        build(store)
    link_before, bytes_before = os.readlink(store.link), sha256(store.link)
    parquet_before = os.readlink(store.parquet_dir / "current")
    assert run_build_process(store, fault) == -9
    assert os.readlink(store.link) == link_before
    assert sha256(store.link) == bytes_before
    assert os.readlink(store.parquet_dir / "current") == parquet_before
    assert night_of(store.link) == 3
    assert [v.number for v in store.versions()] == [2, 3]
    assert run_build_process(store, None) == 0
    assert night_of(store.link) == 4
    assert [p.name for p in store.versions_dir.glob("work*")] == []
    assert len(list(store.versions_dir.glob("v*/callmetrics.duckdb"))) == 3
    assert os.readlink(store.parquet_dir / "current") == store.versions()[-1].name


def test_a_publish_killed_after_its_switch_is_published_and_repaired(
    store: WarehouseStore,
) -> None:
    for _ in range(3):
        build(store)
    assert run_build_process(store, "after_switch") == -9
    assert night_of(store.link) == 4  # the switch is the commit point
    assert os.readlink(store.parquet_dir / "current") == "v000003"  # not switched yet
    assert build(store) == "reuse"  # the next build repairs the Parquet pointer first
    assert night_of(store.link) == 5
    assert os.readlink(store.parquet_dir / "current") == "v000005"


def test_one_build_at_a_time(store: WarehouseStore) -> None:
    build(store)
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from callmetrics.publishing import WarehouseStore
        from callmetrics.publishing.files import StoreLock
        store = WarehouseStore(Path({str(store.link)!r}))
        with StoreLock(store.versions_dir / ".lock", "it").hold():
            store.prepare_work()
            print("building", flush=True)
            time.sleep(60)
        """
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code], cwd=PROJECT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "building"
        with pytest.raises(UserError, match="another build or rollback"):
            build(store)
        with pytest.raises(UserError, match="another build or rollback"):
            store.rollback()
    finally:
        other.kill()
        other.wait()
    # killed while holding the lock and a work file: the next build goes ahead by itself
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            assert build(store) == "copy"
            break
        except UserError:
            time.sleep(0.1)
    assert night_of(store.link) == 2


def test_rollback_command(
    store: WarehouseStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from callmetrics.cli import main

    monkeypatch.setenv("CALLMETRICS_WAREHOUSE", str(store.link))
    dagster_home = store.link.parent / "dagster_home"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    assert main(["rollback"]) == 2
    assert "no published version" in capsys.readouterr().err
    build(store)
    assert main(["rollback"]) == 2
    assert capsys.readouterr().err.strip().endswith("to roll back to")
    build(store)
    assert main(["rollback", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listed] == [["live", "v000002"], ["v000001", "(published"]]
    assert main(["rollback"]) == 0
    assert "now serves v000001" in capsys.readouterr().err
    assert night_of(store.link) == 1
    # the Dagster UI is told which version is live now
    from callmetrics.orchestration.assets.publish import PUBLISHED_KEY
    from callmetrics.orchestration.instance import open_instance

    with open_instance() as instance:
        records = instance.fetch_observations(PUBLISHED_KEY, limit=1).records
    metadata = records[0].asset_observation.metadata  # type: ignore[union-attr]
    assert metadata["version"].value == "v000001"
    assert metadata["rolled_back"].value == "v000002"


def test_a_store_of_the_older_layout_is_migrated_without_a_dangling_link(
    tmp_path: Path,
) -> None:
    """Before the constant catalog name each version was `callmetrics.versions/vNNNNNN.duckdb`
    (catalog `vNNNNNN`). The first look at such a store moves the files into version folders:
    the history, rollback and retention carry on, and the catalog is `callmetrics` again."""
    store = WarehouseStore(tmp_path / "wh" / "callmetrics.duckdb", keep=3)
    for _ in range(3):
        build(store)
    # rewrite it into the older layout, as a store published before this change looks
    for version in store.versions():
        os.rename(store.version_path(version.number), store.versions_dir / f"{version.name}.duckdb")
        remove_tree(store.version_dir(version.number))  # with its digests file
    os.unlink(store.link)
    os.symlink("callmetrics.versions/v000003.duckdb", store.link)
    with duckdb.connect(str(store.link), read_only=True) as con:
        assert con.execute("select current_database()").fetchone() == ("v000003",)
    reader = hold_open(store.link)  # a reader of the old layout keeps its file
    try:
        assert [v.number for v in store.versions()] == [1, 2, 3]
        assert os.readlink(store.link) == "callmetrics.versions/v000003/callmetrics.duckdb"
        assert not list(store.versions_dir.glob("*.duckdb"))
        with duckdb.connect(str(store.link), read_only=True) as con:
            assert con.execute("select current_database()").fetchone() == ("callmetrics",)
            assert con.execute("select count(*) from callmetrics.marts.mart_a").fetchone() == (3,)
        assert build(store) == "reuse"
        assert night_of(store.link) == 4
        assert [v.number for v in store.versions()] == [2, 3, 4]
        now_live, _ = store.rollback()
        assert now_live.number == 3 and night_of(store.link) == 3
    finally:
        reader.communicate("")
