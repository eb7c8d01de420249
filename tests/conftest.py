"""Shared fixtures: temporary raw directories and warehouses built by the real pipeline.

Building a warehouse runs dbt (snapshot, models, tests), which takes tens of seconds, so
the warehouses below are session-scoped and shared by every test module that only reads.
Tests that change raw data build their own warehouse under their own tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from callmetrics.settings import RAW_DIR_ENV, WAREHOUSE_ENV
from tests.fixtures.handmade import write_handmade_raw

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


@pytest.fixture(scope="session")
def handmade_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """The hand-made dirty raw directory of tests/fixtures/handmade.py, built."""
    root = tmp_path_factory.mktemp("handmade")
    raw = write_handmade_raw(root / "raw")
    warehouse = root / "warehouse" / "callmetrics.duckdb"
    build(raw, warehouse)
    return BuiltWarehouse(raw, warehouse)


@pytest.fixture(scope="session")
def generated_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """A small generated raw directory (all the dirt, at a high rate), built."""
    from callmetrics.generation.base import generate_raw

    root = tmp_path_factory.mktemp("generated")
    raw = root / "raw"
    generate_raw(raw, calls=GENERATED_CALLS, days=20, orgs=6, resellers=2,
                 seed=GENERATED_SEED, dirt_rate=0.05)
    warehouse = root / "warehouse" / "callmetrics.duckdb"
    build(raw, warehouse)
    return BuiltWarehouse(raw, warehouse)
