"""`callmetrics build` publishes to PostgreSQL when CALLMETRICS_POSTGRES_URL is set (the publish
step's second destination), `callmetrics rollback` switches both destinations, and a bad URL
fails the publish step with one line while the DuckDB version stays published."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from callmetrics.cli import main
from callmetrics.publishing import postgres
from callmetrics.publishing.store import WarehouseStore
from tests.conftest import pointed_at
from tests.postgres_fixtures import PostgresDatabase


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if ": error: " in line]


def _pg_state(db: PostgresDatabase) -> tuple[str, int, dict[str, str]]:
    with postgres.connect(db.url) as con:
        con.execute("set role callmetrics_owner")
        row = con.execute("select version, number from marts.warehouse_version").fetchone()
        assert row is not None
        tables = con.execute(
            "select table_name, schema_name from bi_access.version_tables where number = %s",
            [row[1]],
        ).fetchall()
        return str(row[0]), int(row[1]), dict(tables)


def _pg_metrics(db: PostgresDatabase) -> list[tuple]:
    with postgres.connect(db.url) as con:
        return con.execute(
            "select organization_id, bucket_start, total_calls, duration_us_sum "
            "from marts.mart_metrics order by 1, 2"
        ).fetchall()


def _duck_metrics(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select organization_id, bucket_start, total_calls, duration_us_sum "
            "from marts.mart_metrics order by 1, 2"
        ).fetchall()


def test_build_publishes_both_destinations_rollback_follows_and_bad_url_keeps_duckdb(
    pg_database: PostgresDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from callmetrics.generation.base import generate_raw

    raw, warehouse = tmp_path / "raw", tmp_path / "warehouse" / "callmetrics.duckdb"
    generate_raw(raw, calls=1500, days=10, orgs=4, resellers=2, seed=11, dirt_rate=0.02)
    monkeypatch.setenv(postgres.URL_ENV, pg_database.url)
    with pointed_at(raw, warehouse):
        assert main(["build"]) == 0
        assert _pg_state(pg_database)[:2] == ("v000001", 1)
        expected = _duck_metrics(warehouse)
        assert expected and _pg_metrics(pg_database) == expected

        # a build with nothing new (one raw file re-dated with the same bytes, so dbt runs
        # rather than the quiet night's skip): version 2 reads every table of version 1
        touched = min((raw / "calls").rglob("*.parquet"))
        stat = touched.stat()
        os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert main(["build"]) == 0
        version, _number, tables = _pg_state(pg_database)
        assert version == "v000002"
        assert set(tables.values()) == {"marts_v000001"}

        capsys.readouterr()
        assert main(["rollback"]) == 0
        err = capsys.readouterr().err
        assert "PostgreSQL now serves v000001" in err
        assert WarehouseStore(warehouse).live().name == "v000001"  # type: ignore[union-attr]
        assert _pg_state(pg_database)[:2] == ("v000001", 1)

        # unreachable server: the publish step fails with one line, DuckDB's publish stands
        monkeypatch.setenv(postgres.URL_ENV, "postgresql://callmetrics_loader@127.0.0.1:1/x")
        assert main(["build", "--full-refresh"]) == 1
        err = capsys.readouterr().err
        lines = _error_lines(err)
        assert len(lines) == 1, err
        assert "Connection refused" in lines[0] and f"check {postgres.URL_ENV}" in lines[0]
        assert "DuckDB published v000003" in lines[0]
        assert "Traceback" not in err
        assert WarehouseStore(warehouse).live().name == "v000003"  # type: ignore[union-attr]
        assert _pg_state(pg_database)[:2] == ("v000001", 1)

        # rollback with PostgreSQL unreachable: DuckDB rolls back, the line says PostgreSQL did not
        assert main(["rollback"]) == 2
        err = capsys.readouterr().err
        assert "Connection refused" in _error_lines(err)[0]
        assert WarehouseStore(warehouse).live().name == "v000001"  # type: ignore[union-attr]
