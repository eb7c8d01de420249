"""A constant catalog name across publishes, BI inspection and pools, dbt show and dbt docs
(issue 16, items 1 and 2).

One warehouse is built and published twice by the real `callmetrics build`. Before the second
publish, SQLAlchemy engines with the documented pool settings are opened and used; after it,
each must (or, for the default pool, must not) see the new version. Every reader here names
the catalog `callmetrics`, as a BI tool's saved query would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from callmetrics.settings import PROJECT_ROOT
from tests.conftest import build

COUNT_SQL = "select count(*) from callmetrics.marts.mart_metrics"
VERSION_SQL = "select version from callmetrics.meta.warehouse_version"


def engine(link: Path, **pool: object) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{link}", connect_args={"read_only": True}, **pool)


@contextmanager
def reader_process(link: Path) -> Iterator[None]:
    """Another process with a read-only connection open on the warehouse, as a BI tool has."""
    code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        f"con.execute({COUNT_SQL!r}).fetchall(); print('open', flush=True); sys.stdin.read()"
    )
    reader = subprocess.Popen([sys.executable, "-c", code, str(link)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        yield
    finally:
        reader.communicate("")


def version_of(eng: sa.Engine) -> str:
    with eng.connect() as con:
        return str(con.execute(sa.text(VERSION_SQL)).scalar_one())


@dataclass
class Published:
    raw: Path
    link: Path
    root: Path
    mart_rows: int
    first: dict[str, object] = field(default_factory=dict)
    engines: dict[str, sa.Engine] = field(default_factory=dict)


def dbt_env(link: Path) -> dict[str, str]:
    return {**os.environ, "CALLMETRICS_WAREHOUSE": str(link), "DBT_PROFILES_DIR": str(PROJECT_ROOT),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip


def dbt_show(link: Path, target_path: Path) -> list[dict[str, object]]:
    """`dbt show` through the read-only `published` target, as the README tells analysts."""
    sql = (
        "select count(*) as n, (select version from {{ ref('mart_metrics').database }}"
        ".meta.warehouse_version) as v from {{ ref('mart_metrics') }}"
    )
    done = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "dbt"), "--quiet", "show", "--target", "published",
         "--target-path", str(target_path), "--output", "json", "--inline", sql],
        cwd=PROJECT_ROOT, env=dbt_env(link), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(done.stdout)["show"])


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    from callmetrics.generation.base import generate_raw

    root = tmp_path_factory.mktemp("bi")
    raw, link = root / "raw", root / "warehouse" / "callmetrics.duckdb"
    generate_raw(raw, calls=1500, days=10, orgs=4, resellers=2, seed=11, dirt_rate=0.02)
    build(raw, link)
    with duckdb.connect(str(link), read_only=True) as con:
        rows = con.execute(COUNT_SQL).fetchone()
    assert rows is not None and rows[0] > 0
    state = Published(raw=raw, link=link, root=root, mart_rows=int(rows[0]))
    first = engine(link, poolclass=NullPool)
    state.first["schemas"] = sa.inspect(first).get_schema_names()
    first.dispose()
    state.first["dbt_show"] = dbt_show(link, root / "dbt-target")
    # engines opened before the second publish, each used once
    state.engines = {
        "null_pool": engine(link, poolclass=NullPool),
        "default_pool": engine(link),
        "recycle": engine(link, pool_recycle=1, pool_pre_ping=True),
    }
    for eng in state.engines.values():
        assert version_of(eng) == "v000001"
    build(raw, link, "--full-refresh")  # the second publish (a plain build would be a quiet night)
    return state


def test_pool_settings_that_see_each_new_version(published: Published) -> None:
    engines = published.engines
    # NullPool (the README's setting): every checkout opens the link anew
    assert version_of(engines["null_pool"]) == "v000002"
    # a default pool keeps handing out its open connection to the version it opened
    assert version_of(engines["default_pool"]) == "v000001"
    # pool_recycle: a pooled connection older than the limit is replaced at its next checkout
    time.sleep(1.2)
    assert version_of(engines["recycle"]) == "v000002"
    for eng in engines.values():
        eng.dispose()


def test_the_catalog_is_callmetrics_in_every_version(published: Published) -> None:
    versions = published.link.parent / "callmetrics.versions"
    assert os.readlink(published.link) == "callmetrics.versions/v000002/callmetrics.duckdb"
    for number in (1, 2):
        path = versions / f"v00000{number}" / "callmetrics.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute("select current_database()").fetchone() == ("callmetrics",)
            assert con.execute(VERSION_SQL).fetchone() == (f"v00000{number}",)
            assert con.execute(COUNT_SQL).fetchone() == (published.mart_rows,)
            # the staging views resolve in a renamed file too
            assert con.execute(
                "select count(*) from callmetrics.staging.stg_platform__organizations"
            ).fetchone()[0] > 0


def test_sqlalchemy_inspection_names_stay_the_same_across_publishes(published: Published) -> None:
    bi = engine(published.link, poolclass=NullPool)
    inspector = sa.inspect(bi)
    schemas = inspector.get_schema_names()
    assert schemas == published.first["schemas"]
    assert "callmetrics.marts" in schemas
    assert not [s for s in schemas if s.startswith("v0")]
    assert "mart_metrics" in inspector.get_table_names(schema="callmetrics.marts")
    columns = {c["name"]: c for c in inspector.get_columns("mart_metrics", schema="marts")}
    assert {"organization_id", "bucket_start", "total_calls"} <= set(columns)
    assert columns["organization_id"]["nullable"] is False
    assert isinstance(columns["total_calls"]["type"], sa.Integer | sa.BigInteger)
    frame = pd.read_sql(
        sa.text("select count(*) as n from callmetrics.marts.mart_metrics"), bi
    )
    assert frame["n"].tolist() == [published.mart_rows]
    bi.dispose()


def test_the_duckdb_cli_of_the_bi_extra_reads_callmetrics_marts(published: Published) -> None:
    done = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "duckdb"), "-readonly", "-csv", "-noheader",
         str(published.link), "-c", f"{COUNT_SQL}; {VERSION_SQL}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(published.mart_rows), "v000002"]


def test_dbt_show_reads_the_live_version_beside_an_open_reader(published: Published) -> None:
    assert published.first["dbt_show"] == [{"n": published.mart_rows, "v": "v000001"}]
    with reader_process(published.link):
        rows = dbt_show(published.link, published.root / "dbt-target")
    assert rows == [{"n": published.mart_rows, "v": "v000002"}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_docs_generates_a_full_catalog_and_serves_it(published: Published) -> None:
    port = _free_port()
    docs_target = published.root / "docs-target"
    with reader_process(published.link):
        server = subprocess.Popen(
            ["make", "-o", "install", "docs", f"DOCS_PORT={port}",
             f"DOCS_TARGET={docs_target}"],
            cwd=PROJECT_ROOT, env=dbt_env(published.link), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            catalog = None
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    url = f"http://127.0.0.1:{port}/catalog.json"
                    with urllib.request.urlopen(url, timeout=2) as answer:
                        catalog = json.loads(answer.read())
                    break
                except OSError:
                    time.sleep(1)
            assert catalog is not None, server.stdout.read() if server.poll() is not None else ""
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as page:
                assert page.status == 200
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a loaded machine: the server is slow to stop
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
    assert catalog["errors"] is None
    node = catalog["nodes"]["model.callmetrics.mart_metrics"]
    assert node["metadata"]["database"] == "callmetrics"
    assert {"organization_id", "bucket_start", "total_calls"} <= set(node["columns"])
    models = [k for k in catalog["nodes"] if k.startswith("model.")]
    assert len(models) >= 20  # every model, with its columns
    assert all(catalog["nodes"][k]["columns"] for k in models)
