"""Shared fixtures: temporary raw directories and warehouses built by the real pipeline.

Building a warehouse runs dbt (snapshot, models, tests), which takes tens of seconds, so
the warehouses below are session-scoped and shared by every test module that only reads.
Tests that change raw data build their own warehouse under their own tmp_path.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from filelock import FileLock

from callmetrics.settings import PROJECT_ROOT, RAW_DIR_ENV, WAREHOUSE_ENV
from tests.fixtures.handmade import write_handmade_raw

pytest_plugins = ["tests.postgres_fixtures", "tests.spark_support"]

GENERATED_CALLS = 3_000
GENERATED_SEED = 7


@dataclass(frozen=True)
class BuiltWarehouse:
    raw_dir: Path
    warehouse: Path

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.warehouse), read_only=True)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()


@contextmanager
def pointed_at(raw_dir: Path, warehouse: Path) -> Iterator[None]:
    """Point CALLMETRICS_RAW_DIR and CALLMETRICS_WAREHOUSE at a test's own files."""
    saved = {k: os.environ.get(k) for k in (RAW_DIR_ENV, WAREHOUSE_ENV)}
    os.environ[RAW_DIR_ENV] = str(raw_dir)
    os.environ[WAREHOUSE_ENV] = str(warehouse)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build(raw_dir: Path, warehouse: Path, *extra: str) -> None:
    """Run `callmetrics build` in process, exactly as the command line does."""
    from callmetrics.cli import main

    with pointed_at(raw_dir, warehouse):
        status = main(["build", *extra])
    assert status == 0, f"callmetrics build failed with status {status}"


@pytest.fixture(scope="session", autouse=True)
def test_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Runs made by tests go to a DAGSTER_HOME of their own (telemetry off, as the project's),
    not into the project's dagster_home/ that `dagster dev` shows."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(
        (PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    yield home
    if saved is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = saved


def shared_warehouse(
    tmp_path_factory: pytest.TempPathFactory, name: str, write_raw: Callable[[Path], object]
) -> BuiltWarehouse:
    """Build a warehouse once per test session, even with pytest-xdist: the first worker
    builds it under the folder all workers share, the others wait for it and reuse it
    (read-only connections do not block each other)."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's base is a child of the session's folder; without it, the base.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / f"shared-{name}"
    with FileLock(str(shared / f"shared-{name}.lock")):
        raw, warehouse = root / "raw", root / "warehouse" / "callmetrics.duckdb"
        if not (root / "built").exists():
            if root.exists():
                shutil.rmtree(root)  # a worker died half-way through building it
            write_raw(raw)
            build(raw, warehouse)
            (root / "built").touch()
    return BuiltWarehouse(raw, warehouse)


@pytest.fixture(scope="session")
def handmade_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """The hand-made dirty raw directory of tests/fixtures/handmade.py, built."""
    return shared_warehouse(tmp_path_factory, "handmade", write_handmade_raw)


def _write_generated_raw(raw: Path) -> None:
    from callmetrics.generation.base import generate_raw

    generate_raw(raw, calls=GENERATED_CALLS, days=20, orgs=6, resellers=2,
                 seed=GENERATED_SEED, dirt_rate=0.05)  # fmt: skip


@pytest.fixture(scope="session")
def generated_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """A small generated raw directory (all the dirt, at a high rate), built."""
    return shared_warehouse(tmp_path_factory, "generated", _write_generated_raw)
