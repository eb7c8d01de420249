"""A real Spark Thrift server for the tests, started once per pytest session (`spark_server`)
in a folder of its own on a free port, and stopped by its PID at the end.

The Makefile runs `pytest -n 2 --dist loadfile`: each Spark test module runs whole on one
worker, so its module-scoped Spark builds are made once, and a worker starts a server only when
it runs a Spark module. (`--dist loadgroup` with `xdist_group` marks would keep both modules on
one worker, but with pytest 9.2 and pytest-xdist 3.8 it groups nothing: xdist tags each test's
`_nodeid`, which pytest 9.2 no longer reads, so the groups' tests spread over both workers and
each built the module's fixtures again.) The tests skip only when the `[spark]` extra is not
installed (`make install-test` installs it, so CI runs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from callmetrics.settings import SPARK_DIR_ENV, SPARK_HOST_ENV, SPARK_PORT_ENV, TARGET_ENV
from callmetrics.spark.extra import missing_packages
from callmetrics.spark.server import Server, start, stop

# The tests' server: small data, so a small driver (the machine is shared) and few shuffle
# partitions (a few thousand rows: each task costs more than its rows).
TEST_MEMORY = "2g"
TEST_SHUFFLE_PARTITIONS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the duration."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def spark_server() -> Iterator[Server]:
    """One local Thrift server for the session; CALLMETRICS_SPARK_HOST/PORT/DIR name it."""
    missing = missing_packages()
    if missing:
        pytest.skip(
            f"the Spark extra is not installed ({', '.join(missing)}): pip install -e '.[spark]'"
        )
    base = Path(tempfile.mkdtemp(prefix="callmetrics-spark-test-"))
    server = Server(base=base, host="127.0.0.1", port=free_port(), memory=TEST_MEMORY,
                    shuffle_partitions=TEST_SHUFFLE_PARTITIONS)  # fmt: skip
    try:
        with environment(
            **{
                SPARK_HOST_ENV: server.host,
                SPARK_PORT_ENV: str(server.port),
                SPARK_DIR_ENV: str(server.base),
            }
        ):
            start(server)
            yield server
    finally:
        stop(server)  # by the PID in its PID file
        shutil.rmtree(base, ignore_errors=True)


def spark_sql(server: Server, sql: str) -> list[tuple]:
    """Run one statement on the server; its rows (none for a statement without result)."""
    from pyhive import hive

    con = hive.connect(host=server.host, port=server.port)
    try:
        cursor = con.cursor()
        cursor.execute(sql)
        try:
            return [tuple(row) for row in cursor.fetchall()]
        except Exception:  # pyhive: "No result set" for statements without rows
            return []
    finally:
        con.close()


def reset_spark(server: Server) -> None:
    """Drop every schema but `default`: the next build on the server starts from nothing, as
    a fresh DuckDB warehouse does (the Spark state lives in the server's metastore)."""
    for (name,) in spark_sql(server, "show schemas"):
        if name != "default":
            spark_sql(server, f"drop schema if exists `{name}` cascade")


def cli(command: list[str], raw: Path, warehouse: Path, server: Server | None = None) -> str:
    """`callmetrics COMMAND` as a process over `raw` into `warehouse`, on DuckDB or (given its
    `server`) with `CALLMETRICS_TARGET=spark` (the Dagster definitions are loaded for the target
    of the process: Spark's graph), with dbt's artifacts in the server's folder; asserts it
    succeeded and returns its standard error (the progress lines)."""
    import subprocess
    import sys

    from callmetrics.settings import PROJECT_ROOT

    env = {
        **os.environ,
        "CALLMETRICS_RAW_DIR": str(raw),
        "CALLMETRICS_WAREHOUSE": str(warehouse),
        "DBT_PROFILES_DIR": str(PROJECT_ROOT),
        TARGET_ENV: "duckdb",
    }
    if server is not None:
        env.update({
            "DBT_TARGET_PATH": str(server.base / "dbt-target"),
            TARGET_ENV: "spark",
            SPARK_HOST_ENV: server.host,
            SPARK_PORT_ENV: str(server.port),
        })  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "callmetrics.cli", *command], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    log = warehouse.parent / "build.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    engine = "Spark" if server is not None else "DuckDB"
    if done.returncode != 0 and server is not None:
        from callmetrics.spark.server import log_tail

        tail += f"\nthe server's last errors: {log_tail(server, 8)[-3000:]}"
    assert done.returncode == 0, f"{command} on {engine} failed:\n{done.stderr[-3000:]}\n{tail}"
    return done.stderr


def cli_build(raw: Path, warehouse: Path, *extra: str, server: Server | None = None) -> str:
    """`callmetrics build` as a process (cli), on DuckDB or on the Spark `server`."""
    return cli(["build", *extra], raw, warehouse, server)


def spark_build(server: Server, raw: Path, warehouse: Path, *extra: str) -> str:
    """`CALLMETRICS_TARGET=spark callmetrics build` as a process (cli)."""
    return cli(["build", *extra], raw, warehouse, server)
