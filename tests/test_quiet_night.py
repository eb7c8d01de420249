"""A quiet night: no raw file added or changed since the live version was built.

`callmetrics build` then runs neither dbt nor the Dagster job nor publishing: the live version
is what a build would publish again, and its payloads for the day are on disk. Any change of
the inputs (a raw file's size or modification time, a new file, the dbt project) or a missing
payload folder makes the build run; a build that changes no mart links every Parquet copy of
the version before instead of writing it again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from callmetrics.arrivals import INPUTS_FILE, inputs_of, quiet_night, read_inputs
from callmetrics.publishing import WarehouseStore
from tests.conftest import build
from tests.fixtures.handmade import write_handmade_raw

MART_QUERY = (
    "select table_name from duckdb_tables() where database_name = current_database() "
    "and schema_name = 'marts' order by 1"
)


def mart_rows(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [row[0] for row in con.execute(MART_QUERY).fetchall()]
        return {
            name: sorted(con.execute(f"select * from marts.{name}").fetchall(), key=repr)
            for name in names
        }


def test_a_quiet_night_skips_the_build_and_a_changed_file_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    write_handmade_raw(raw)
    warehouse = tmp_path / "wh" / "callmetrics.duckdb"
    store = WarehouseStore(warehouse, raw_dir=raw.resolve())
    build(raw, warehouse)
    first = store.live()
    assert first is not None and first.number == 1
    recorded = read_inputs(store.version_dir(1))
    assert recorded is not None and recorded["raw_files"]
    assert recorded == inputs_of(raw.resolve())
    assert recorded["target"] == "duckdb"  # the engine is part of the inputs
    payloads = sorted((tmp_path / "wh" / "exports").rglob("*.json"))
    assert payloads
    stamps = {p: p.stat().st_mtime_ns for p in payloads}
    capsys.readouterr()

    # -- nothing arrived: no dbt, no job, no new version, payloads untouched
    build(raw, warehouse)
    err = capsys.readouterr().err
    assert "nothing arrived" in err and "v000001 keeps serving" in err
    assert "running job" not in err
    assert [v.number for v in store.versions()] == [1]
    assert {p: p.stat().st_mtime_ns for p in payloads} == stamps

    # -- a raw file rewritten with the same rows (new mtime): the build runs and changes nothing
    calls_file = sorted((raw / "calls").rglob("*.parquet"))[0]
    stat = calls_file.stat()
    os.utime(calls_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    build(raw, warehouse)
    err = capsys.readouterr().err
    assert "nothing arrived" not in err and "running job" in err
    second = store.live()
    assert second is not None and second.number == 2
    assert mart_rows(store.version_path(1)) == mart_rows(store.version_path(2))
    # no mart changed: every Parquet copy is the first version's file, linked
    published = sorted(p.name for p in (store.parquet_dir / "v000002").iterdir())
    assert second.publish_seconds["parquet_kept"] == len(published) > 0
    for name in published:
        old = store.parquet_dir / "v000001" / name / "part-0.parquet"
        new = store.parquet_dir / "v000002" / name / "part-0.parquet"
        assert old.stat().st_ino == new.stat().st_ino

    # -- the payloads of the day gone: the build runs again to write them
    exports = tmp_path / "wh" / "exports"
    shutil.rmtree(exports)
    build(raw, warehouse)
    assert "running job" in capsys.readouterr().err
    assert [v.number for v in store.versions()] == [1, 2, 3]
    assert any(exports.rglob("all-organizations.json"))


def test_the_check_sees_every_kind_of_change(tmp_path: Path) -> None:
    raw, project, live = tmp_path / "raw", tmp_path / "project", tmp_path / "v000001"
    (raw / "calls" / "extract=1").mkdir(parents=True)
    (raw / "calls" / "extract=1" / "part-0.parquet").write_bytes(b"calls")
    (project / "models").mkdir(parents=True)
    (project / "models" / "m.sql").write_text("select 1")
    (project / "dbt_project.yml").write_text("name: x")
    payloads = tmp_path / "exports" / "day"
    payloads.mkdir(parents=True)
    published = "2025-03-02T02:10:00+00:00"
    (payloads / "manifest.json").write_text(json.dumps({"generatedAt": "2025-03-02T02:11:00Z"}))
    live.mkdir()
    (live / INPUTS_FILE).write_text(json.dumps(inputs_of(raw, project)))

    def check() -> bool:
        return quiet_night(raw, "v000001", live, published, [payloads], project) is not None

    assert check()
    assert quiet_night(raw, None, None, published, [payloads], project) is None  # none live
    # payloads written before the live version was published
    later = "2025-03-02T02:12:00+00:00"
    assert quiet_night(raw, "v000001", live, later, [payloads], project) is None
    assert quiet_night(raw, "v000001", live, published, [payloads / "x"], project) is None
    # a new file, in a new folder
    extra = raw / "telemetry_events" / "late" / "part-9.parquet"
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"x")
    assert not check()
    extra.unlink()
    assert check()
    # a file rewritten in place with another size
    (raw / "calls" / "extract=1" / "part-0.parquet").write_bytes(b"calls, more")
    assert not check()
    (live / INPUTS_FILE).write_text(json.dumps(inputs_of(raw, project)))
    assert check()
    # the dbt project changed
    (project / "models" / "m.sql").write_text("select 2")
    assert not check()
    (live / INPUTS_FILE).write_text(json.dumps(inputs_of(raw, project)))
    assert check()
    # the same files and project on another engine (CALLMETRICS_TARGET): the live version is
    # not what a Spark build publishes, so the build runs; the record names the engine
    assert json.loads((live / INPUTS_FILE).read_text())["target"] == "duckdb"
    assert quiet_night(raw, "v000001", live, published, [payloads], project, "spark") is None
    (live / INPUTS_FILE).write_text(json.dumps(inputs_of(raw, project, "spark")))
    assert not check()
    assert quiet_night(raw, "v000001", live, published, [payloads], project, "spark") is not None
    (live / INPUTS_FILE).write_text(json.dumps(inputs_of(raw, project)))
    assert check()
    # no record (a version published before this check existed)
    (live / INPUTS_FILE).unlink()
    assert not check()
