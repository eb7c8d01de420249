"""The published warehouse opens in DuckDB 1.4, the oldest version BI drivers bundle.

DuckDB 1.4 runs in its own virtual environment (`scripts/setup_compat_duckdb.sh` creates
`.venv-duckdb14`); it opens the published file read-only, through the link, and counts the rows
of every table, which must equal what DuckDB 2 counts.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import duckdb
import pytest

from callmetrics.publishing import WarehouseStore
from callmetrics.publishing.duck import storage_version
from tests.conftest import BuiltWarehouse
from tests.test_publish_store import build as fake_build_and_publish

PROJECT = Path(__file__).resolve().parents[1]
COMPAT_PYTHON = PROJECT / ".venv-duckdb14" / "bin" / "python"

needs_duckdb14 = pytest.mark.skipif(
    not COMPAT_PYTHON.exists(),
    reason="no DuckDB 1.4 environment: run scripts/setup_compat_duckdb.sh to create .venv-duckdb14",
)

COUNT_EVERY_TABLE = textwrap.dedent(
    """
    import duckdb, json, sys
    con = duckdb.connect(sys.argv[1], read_only=True)
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database() order by 1, 2"
    ).fetchall()
    counts = {
        f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0]
        for s, t in tables
    }
    print(json.dumps({"version": duckdb.__version__, "counts": counts}))
    """
)


def counts_in_duckdb14(path: Path) -> tuple[str, dict[str, int]]:
    done = subprocess.run(
        [str(COMPAT_PYTHON), "-c", COUNT_EVERY_TABLE, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    return answer["version"], answer["counts"]


def counts_here(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() order by 1, 2"
        ).fetchall()
        return {
            f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0]  # type: ignore[index]
            for s, t in tables
        }


@needs_duckdb14
def test_a_file_that_duckdb2_writes_by_default_does_not_open_in_14(tmp_path: Path) -> None:
    """The check is not vacuous: without the compatibility setting DuckDB 1.4 refuses."""
    path = tmp_path / "default.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select 1 as x")
    if duckdb.__version__.startswith("1.4."):
        pytest.skip("the main environment is DuckDB 1.4 itself")
    done = subprocess.run(
        [str(COMPAT_PYTHON), "-c", COUNT_EVERY_TABLE, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0


@needs_duckdb14
def test_every_version_kind_opens_in_duckdb14(tmp_path: Path) -> None:
    """Fresh, copied and reused versions all keep the 1.4 storage format."""
    store = WarehouseStore(tmp_path / "callmetrics.duckdb", keep=3)
    methods = [fake_build_and_publish(store) for _ in range(4)]
    assert methods == ["fresh", "copy", "copy", "reuse"]
    for version in store.versions():
        path = store.version_path(version.number)
        assert storage_version(path) == "v1.4.0+"
        release, counts = counts_in_duckdb14(path)
        assert release.startswith("1.4.")
        assert counts == counts_here(path)


@needs_duckdb14
def test_the_built_warehouse_opens_in_duckdb14(handmade_warehouse: BuiltWarehouse) -> None:
    """A warehouse written by the real pipeline (dbt-duckdb on DuckDB 2) opens in 1.4."""
    link = handmade_warehouse.warehouse
    assert link.is_symlink()
    assert storage_version(link) == "v1.4.0+"
    release, counts = counts_in_duckdb14(link)
    assert release.startswith("1.4.")
    assert counts == counts_here(link)
    assert counts["marts.mart_metrics"] > 0
    assert counts["marts.fct_calls"] > 0
