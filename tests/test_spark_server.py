"""The local Spark Thrift server (`callmetrics spark start|stop|status`), the copy of Spark's
tables into a DuckDB work file, and the one-line errors around them.

These tests need a Spark server but not the dbt models: the tables are made by hand on it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from callmetrics.cli import main
from callmetrics.errors import UserError
from callmetrics.settings import Settings, SettingsError
from callmetrics.spark import extra, hive_jars
from callmetrics.spark.build import check_target
from callmetrics.spark.marts import copy_marts, data_files, duckdb_type
from callmetrics.spark.server import Server, start
from tests.spark_support import free_port, reset_spark, spark_sql


def test_duckdb_types_of_spark_types() -> None:
    assert duckdb_type("string") == "varchar"
    assert duckdb_type("int") == "integer"
    assert duckdb_type("bigint") == "bigint"
    assert duckdb_type("double") == "double"
    assert duckdb_type("timestamp") == "timestamp with time zone"
    assert duckdb_type("timestamp_ntz") == "timestamp"
    assert duckdb_type("array<int>") == "integer[]"
    assert duckdb_type("decimal(38,6)") == "decimal(38,6)"
    assert duckdb_type("varchar(20)") == "varchar"
    with pytest.raises(UserError, match="map<string,int>"):
        duckdb_type("map<string,int>")


def test_data_files_skip_what_hadoop_hides(tmp_path: Path) -> None:
    for name in ("d=2025-01-01/part-0.snappy.parquet", "d=2025-01-01/.part-0.parquet.crc",
                 "_SUCCESS", "_temporary/0/part-9.parquet", ".spark-staging-1/part-8.parquet",
                 "d=2025-01-02/part-1.parquet",
                 "_bucket_date=2025-01-03/part-2.parquet"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in data_files(tmp_path)] == [
        "_bucket_date=2025-01-03/part-2.parquet",
        "d=2025-01-01/part-0.snappy.parquet",
        "d=2025-01-02/part-1.parquet",
    ]
    assert data_files(tmp_path / "absent") == []


def test_a_missing_extra_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(extra, "missing_packages", lambda: ["pyspark", "dbt-spark"])
    with pytest.raises(UserError) as caught:
        check_target(Settings.from_env({"CALLMETRICS_TARGET": "spark"}))
    assert str(caught.value) == (
        "CALLMETRICS_TARGET=spark needs the Spark extra (pyspark, dbt-spark not installed): "
        "run pip install -e '.[spark]' (or `make install-test`)"
    )
    # the build says it before anything else runs, in one line, with status 2
    from tests.fixtures.handmade import write_handmade_raw

    write_handmade_raw(tmp_path / "raw")
    monkeypatch.setenv("CALLMETRICS_TARGET", "spark")
    monkeypatch.setenv("CALLMETRICS_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("CALLMETRICS_WAREHOUSE", str(tmp_path / "wh" / "callmetrics.duckdb"))
    assert main(["build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"callmetrics build: error: {caught.value}"]
    assert not (tmp_path / "wh").exists()


def test_a_build_on_spark_without_a_server_says_how_to_start_one() -> None:
    port = free_port()  # nothing listens there
    settings = Settings.from_env(
        {"CALLMETRICS_TARGET": "spark", "CALLMETRICS_SPARK_PORT": str(port)}
    )
    if extra.missing_packages():
        pytest.skip("the Spark extra is not installed")
    with pytest.raises(UserError, match=f"no Spark Thrift server answers at 127.0.0.1:{port}: "
                                        "start one with `callmetrics spark start`"):
        check_target(settings)


def test_bad_target_and_port_settings_are_refused() -> None:
    with pytest.raises(SettingsError, match="CALLMETRICS_TARGET='trino' is not a dbt target: "
                                            "write duckdb or spark"):
        Settings.from_env({"CALLMETRICS_TARGET": "trino"})
    with pytest.raises(SettingsError, match="CALLMETRICS_SPARK_PORT='http' is not a whole"):
        Settings.from_env({"CALLMETRICS_SPARK_PORT": "http"})
    with pytest.raises(SettingsError, match="CALLMETRICS_SPARK_MEMORY='lots' is not a Java heap"):
        Settings.from_env({"CALLMETRICS_SPARK_MEMORY": "lots"})
    assert Settings.from_env({}).target == "duckdb"
    spark = Settings.from_env({"CALLMETRICS_TARGET": "Spark", "CALLMETRICS_SPARK_PORT": "10012"})
    assert spark.target == "spark"
    # dbt's `spark` target reads its server from the vars of the call
    assert spark.dbt_vars(Path("w.duckdb"))["spark_port"] == "10012"
    assert "spark_port" not in Settings.from_env({}).dbt_vars(Path("w.duckdb"))


def test_start_refuses_a_taken_port_and_reports_a_failed_start(tmp_path: Path) -> None:
    if extra.missing_packages():
        pytest.skip("the Spark extra is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(base=tmp_path / "s1", host="127.0.0.1", port=port)
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is taken by another "
                                            "process: set CALLMETRICS_SPARK_PORT"):
            start(server)
    # a JVM that cannot start: the error names its exit and the log's own words, no process left
    server = Server(base=tmp_path / "s2", host="127.0.0.1", port=free_port(), memory="lots")
    with pytest.raises(UserError) as caught:
        start(server, timeout=60)
    message = str(caught.value)
    assert message.startswith("the Spark Thrift server exited with status "), message
    assert f"(log: {server.log_path};" in message
    assert "\n" not in message
    assert server.pid() is None and not server.pid_path.exists()


def test_the_server_needs_hives_function_registry_jar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyspark 4 ships no hive-llap-common, which Hive's function registry loads when a closing
    session builds a new Hive client; the server gets the jar `make install-test` fetched, and
    without it refuses to start in one line."""
    if extra.missing_packages():
        pytest.skip("the Spark extra is not installed")
    jar = hive_jars.installed_jar()
    assert jar is not None, f"run `{hive_jars.FETCH}` (make install-test does)"
    command = Server(base=tmp_path / "s", host="127.0.0.1", port=free_port()).command()
    assert command[command.index("--driver-class-path") + 1] == str(jar)
    # with the jar, a JVM of the same Spark initialises Hive's FunctionRegistry (without it
    # the class fails to initialise: NoClassDefFoundError ...LlapSigner$Signable)
    probe = (
        "from pyspark.sql import SparkSession\n"
        f"s = (SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false')"
        f".config('spark.driver.extraClassPath', {str(jar)!r}).getOrCreate())\n"
        "print(s._jvm.org.apache.hadoop.hive.ql.exec.FunctionRegistry.getFunctionNames().size())"
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 200  # Hive 2.3's built-in functions
    # a missing (or altered) jar: one line saying what to run, no process started
    monkeypatch.setattr(hive_jars, "jar_path", lambda: tmp_path / "jars" / hive_jars.JAR)
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / hive_jars.JAR).write_bytes(b"not the jar")
    server = Server(base=tmp_path / "s3", host="127.0.0.1", port=free_port())
    with pytest.raises(UserError) as caught:
        start(server)
    message = str(caught.value)
    assert message.startswith(f"the local Spark server needs {hive_jars.JAR}"), message
    assert f"run `{hive_jars.FETCH}` once" in message and "\n" not in message
    assert server.pid() is None


def _model(spark_schema: str, schema: str, name: str, columns: dict[str, str]) -> dict:
    return {"resource_type": "model", "schema": spark_schema, "name": name, "alias": name,
            "config": {"schema": schema, "materialized": "table", "enabled": True},
            "columns": {c: {"data_type": t} for c, t in columns.items()}}  # fmt: skip


def test_copy_into_duckdb_keeps_declared_types_order_and_partitions(
    spark_server: Server, tmp_path: Path
) -> None:
    start(spark_server)  # when an earlier test stopped it
    reset_spark(spark_server)
    try:
        for sql in (
            "create schema t_marts",
            "create schema t_staging",
            # partitioned tables: Spark moves the partition column to the end; a mart's
            # (_bucket_date) is not declared, so it is left out
            "create table t_marts.mart_x using parquet partitioned by (call_date, _bucket_date) "
            "as select * from values "
            "('org-1', timestamp'2025-01-10 10:15:00', date'2025-01-10', 3L, 1.25d, array(1, 2),"
            " date'2025-01-10'),"
            "('org-2', timestamp'2025-01-11 23:45:00', date'2025-01-11', 0L, 0.0d, array(),"
            " date'2025-01-11') "
            "as t(organization_id, bucket_start, call_date, total_calls, ms_sum, bins, "
            "_bucket_date)",
            "create table t_marts.dim_empty using parquet as "
            "select cast('a' as string) as id, cast(1 as int) as n where false",
            # not a model of the manifest (a leftover of an incremental run): not copied
            "create table t_marts.mart_x__dbt_new using parquet as select 1 as x",
            "create table t_staging.stg_platform__calls using parquet partitioned by (_loaded_at)"
            " as select 'c-1' as id, timestamp'2025-01-12 08:00:00' as updated_at, "
            "timestamp'2026-12-06 07:45:01.123456' as _loaded_at",
            "create table t_staging.not_copied using parquet as select 1 as x",
        ):
            spark_sql(spark_server, sql)
        manifest = tmp_path / "manifest.json"
        nodes = {
            "model.callmetrics.mart_x": _model("t_marts", "marts", "mart_x", {
                "organization_id": "varchar", "bucket_start": "timestamp with time zone",
                "call_date": "date", "total_calls": "bigint", "ms_sum": "double",
                "bins": "integer[]"}),
            "model.callmetrics.dim_empty": _model("t_marts", "marts", "dim_empty", {}),
            "model.callmetrics.stg_platform__calls": _model(
                "t_staging", "staging", "stg_platform__calls", {}),
            "model.callmetrics.not_copied": _model("t_staging", "staging", "not_copied", {}),
        }  # fmt: skip
        manifest.write_text(json.dumps({"nodes": nodes}), encoding="utf-8")
        work = tmp_path / "work.duckdb"
        with duckdb.connect(str(work)) as con:
            con.execute("create schema marts")
            con.execute("create table marts.mart_gone as select 1 as x")
            con.execute("create table marts.mart_x as select 'stale' as organization_id")
        settings = Settings.from_env(dict(os.environ) | {"CALLMETRICS_TARGET": "spark"})
        report = copy_marts(settings, work, manifest)
        assert report.rows == {
            "marts.dim_empty": 0,
            "marts.mart_x": 2,
            "staging.stg_platform__calls": 1,
        }
        assert report.dropped == ["marts.mart_gone"]
        with duckdb.connect(str(work), read_only=True) as con:
            con.execute("set timezone = 'UTC'")
            assert con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'mart_x' order by ordinal_position"
            ).fetchall() == [
                ("organization_id", "VARCHAR"),
                ("bucket_start", "TIMESTAMP WITH TIME ZONE"),
                ("call_date", "DATE"),
                ("total_calls", "BIGINT"),
                ("ms_sum", "DOUBLE"),
                ("bins", "INTEGER[]"),
            ]
            assert con.execute("select * from marts.mart_x order by 1").fetchall() == [
                ("org-1", datetime(2025, 1, 10, 10, 15, tzinfo=UTC), date(2025, 1, 10), 3, 1.25,
                 [1, 2]),
                ("org-2", datetime(2025, 1, 11, 23, 45, tzinfo=UTC), date(2025, 1, 11), 0, 0.0,
                 []),
            ]  # fmt: skip
            # a table without declared columns keeps Spark's, in DuckDB's types
            assert con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'dim_empty' "
                "order by ordinal_position"
            ).fetchall() == [("id", "VARCHAR"), ("n", "INTEGER")]
            assert con.execute("select * from staging.stg_platform__calls").fetchall() == [
                ("c-1", datetime(2025, 1, 12, 8, tzinfo=UTC),
                 datetime(2026, 12, 6, 7, 45, 1, 123456, tzinfo=UTC))
            ]  # fmt: skip
            tables = {r[0] for r in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables"
            ).fetchall()}  # fmt: skip
            assert tables == {"marts.mart_x", "marts.dim_empty", "staging.stg_platform__calls"}
    finally:
        reset_spark(spark_server)


# Last in the module, and the Spark tests run in file order on one worker: it leaves the
# session's server stopped, so no test waits for a restart (a later one would start it again:
# `spark_clean`, test_copy_...). Starting a stopped server through the command's plumbing is
# tests/test_local_server.py's; starting the JVM is the session fixture's.
def test_cli_status_start_stop_on_the_session_server(
    spark_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    start(spark_server)  # when an earlier test stopped it
    assert main(["spark", "status"]) == 0
    pid = spark_server.pid()
    assert pid is not None
    out = capsys.readouterr().out
    assert f"running: pid {pid}, 127.0.0.1:{spark_server.port} listening" in out
    assert main(["spark", "start"]) == 0  # already running: nothing started
    captured = capsys.readouterr()
    assert "already running" in captured.err
    assert captured.out.strip() == (
        f"export CALLMETRICS_TARGET=spark CALLMETRICS_SPARK_PORT={spark_server.port}"
    )
    assert main(["spark", "stop"]) == 0
    assert "stopped" in capsys.readouterr().err
    assert spark_server.pid() is None and not spark_server.listening()
    assert not Path(f"/proc/{pid}").exists() or "\nState:\tZ" in Path(
        f"/proc/{pid}/status"
    ).read_text()
    assert main(["spark", "status"]) == 3
    assert main(["spark", "stop"]) == 0
    assert "not running" in capsys.readouterr().err
