"""Publishing to a real PostgreSQL server (started by tests/postgres_fixtures.py): the copy
equals the DuckDB marts, tenants see exactly their rows, the switch is atomic and bounded, a
failed load changes nothing readers see, rollback, and bad configuration says so in one line.

The expected rows are read from the DuckDB marts with plain SQL filters (the tenant's
organizations), independently of the PostgreSQL policies under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pytest

from callmetrics.publishing import postgres, postgres_roles
from callmetrics.publishing.manifest import Version
from callmetrics.settings import PROJECT_ROOT, Settings
from tests.conftest import BuiltWarehouse
from tests.postgres_fixtures import PostgresDatabase, unique_role

TABLES = (
    "dim_agents",
    "dim_organizations",
    "dim_resellers",
    "mart_agent_performance",
    "mart_ai_insights",
    "mart_daily_volume",
    "mart_escalation_reasons",
    "mart_hourly_distribution",
    "mart_latency_sketch",
    "mart_metrics",
    "mart_resolution_breakdown",
)


def _norm(rows: list[tuple]) -> list[tuple]:
    return [
        tuple(v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in row)
        for row in rows
    ]


def duck_tables(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' "
                "and (table_name like 'mart\\_%' escape '\\' or table_name like 'dim\\_%' "
                "escape '\\') order by 1"
            ).fetchall()
        ]


def duck_rows(path: Path, table: str, where: str = "true", params: list | None = None) -> list:
    with duckdb.connect(str(path), read_only=True) as con:
        return _norm(
            con.execute(
                f"select * from marts.{table} where {where} order by all", params or []
            ).fetchall()
        )


def pg_rows(con: psycopg.Connection, table: str) -> list:
    width = len(con.execute(f"select * from marts.{table} limit 0").description or [])
    order = ", ".join(str(i) for i in range(1, width + 1))
    return _norm(con.execute(f"select * from marts.{table} order by {order}").fetchall())


def publish(
    db: PostgresDatabase, path: Path, number: int, settings: Settings | None = None
) -> postgres.PostgresReport:
    return postgres.publish_duckdb_version(
        db.url, path, number, f"v{number:06d}", keep=3, settings=settings
    )


def login(db: PostgresDatabase, scope: str, scope_id: str | None) -> psycopg.Connection:
    with postgres.connect(db.url) as admin:
        made = postgres_roles.create_login(admin, scope, scope_id, unique_role("bi_t"))
    return psycopg.connect(db.login_url(made.role, made.password), autocommit=True)


def organizations(path: Path) -> list[tuple[str, str | None]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select organization_id, reseller_id from marts.dim_organizations order by 1"
        ).fetchall()


def tenant_filter(table: str, columns: list[str], orgs: list[str], resellers: list[str]):
    """The rows a tenant of these organizations (and resellers) should see, in DuckDB SQL."""
    if "organization_id" in columns:
        return "organization_id in (select unnest(?))", [orgs]
    return "reseller_id in (select unnest(?))", [resellers]


def copy_warehouse(source: Path, dest: Path) -> Path:
    shutil.copyfile(source.resolve(), dest)
    return dest


@pytest.fixture
def warehouse(generated_warehouse: BuiltWarehouse) -> Path:
    return generated_warehouse.warehouse.resolve()


def test_every_mart_equals_duckdb_row_for_row(pg_database, warehouse) -> None:
    report = publish(pg_database, warehouse, 1)
    assert sorted(report.loaded) == list(TABLES) == duck_tables(warehouse)
    with login(pg_database, "platform", None) as platform:
        for table in TABLES:
            expected = duck_rows(warehouse, table)
            assert expected, table
            assert pg_rows(platform, table) == expected, table
        assert platform.execute("select version from marts.warehouse_version").fetchone() == (
            "v000001",
        )
        # the indexes of the common filters are there
        indexes = platform.execute(
            "select indexdef from pg_indexes where schemaname = 'marts_v000001' "
            "and tablename = 'mart_metrics'"
        ).fetchall()
        assert any("(organization_id, bucket_start)" in i[0] for i in indexes)


def test_tenants_see_exactly_their_rows_and_cannot_do_more(pg_database, warehouse) -> None:
    publish(pg_database, warehouse, 1)
    mapping = organizations(warehouse)
    reseller = next(r for _o, r in mapping if r is not None)
    reseller_orgs = [o for o, r in mapping if r == reseller]
    single = mapping[-1]
    assert 1 <= len(reseller_orgs) < len(mapping)
    cases = [
        ("reseller", reseller, reseller_orgs, [reseller]),
        ("organization", single[0], [single[0]], [single[1]] if single[1] else []),
    ]
    for scope, scope_id, orgs, resellers in cases:
        with login(pg_database, scope, scope_id) as tenant:
            for table in TABLES:
                columns = [d.name for d in tenant.execute(
                    f"select * from marts.{table} limit 0").description or []]  # fmt: skip
                where, params = tenant_filter(table, columns, orgs, resellers)
                expected = duck_rows(warehouse, table, where, params)
                got = pg_rows(tenant, table)
                assert got == expected, (scope, table)
                assert len(got) < len(duck_rows(warehouse, table)) or table == "dim_resellers"
            # the versioned tables behind the views are restricted the same way
            direct = tenant.execute(
                "select count(distinct organization_id) from marts_v000001.mart_metrics"
            ).fetchone()
            assert direct is not None and direct[0] <= len(orgs)
            refused = [
                "insert into marts.mart_metrics (organization_id) values ('x')",
                "delete from marts.mart_metrics",
                "update marts_v000001.mart_metrics set total_calls = 0",
                "create table marts.mine (x int)",
                "create table marts_v000001.mine (x int)",
                f"set role {postgres_roles.OWNER}",
                f"set role {postgres_roles.ANALYST}",
                "select * from bi_access.organizations",
                "select * from bi_access.logins",
                "copy (select 1) to program 'id'",
                "copy marts_v000001.mart_metrics from program 'true'",
            ]
            for statement in refused:
                with pytest.raises(
                    (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)
                ):
                    tenant.execute(statement)
            # the mapping is reachable only as the tenant's own organizations
            own = tenant.execute("select * from bi_access.visible_organizations()").fetchall()
            assert sorted(r[0] for r in own) == sorted(orgs)
    with login(pg_database, "platform", None) as platform:
        for table in TABLES:
            assert len(pg_rows(platform, table)) == len(duck_rows(warehouse, table))


def test_an_organization_moving_reseller_moves_with_the_next_publish(
    pg_database, warehouse, tmp_path
) -> None:
    publish(pg_database, warehouse, 1)
    mapping = organizations(warehouse)
    resellers = sorted({r for _o, r in mapping if r is not None})
    assert len(resellers) >= 2
    mover = next(o for o, r in mapping if r == resellers[0])
    with login(pg_database, "reseller", resellers[1]) as tenant:
        seen = tenant.execute("select distinct organization_id from marts.mart_metrics")
        assert mover not in {r[0] for r in seen}
        moved = copy_warehouse(warehouse, tmp_path / "moved.duckdb")
        with duckdb.connect(str(moved)) as con:
            con.execute(
                "update marts.dim_organizations set reseller_id = ? where organization_id = ?",
                [resellers[1], mover],
            )
        report = publish(pg_database, moved, 2)
        # a night where only one dimension changed reloads only that table
        assert report.loaded == ["dim_organizations"]
        assert len(report.reused) == len(TABLES) - 1
        seen = tenant.execute("select distinct organization_id from marts.mart_metrics")
        assert mover in {r[0] for r in seen}
        expected = duck_rows(
            moved,
            "mart_metrics",
            "organization_id in (select organization_id from marts.dim_organizations "
            "where reseller_id = ?)",
            [resellers[1]],
        )
        assert pg_rows(tenant, "mart_metrics") == expected
    with login(pg_database, "platform", None) as platform:
        assert platform.execute("select count(*) from bi_access.visible_organizations()")


def _changed_copy(warehouse: Path, dest: Path) -> tuple[Path, int]:
    """A copy of the warehouse whose mart_metrics lost its first organization's rows."""
    changed = copy_warehouse(warehouse, dest)
    with duckdb.connect(str(changed)) as con:
        con.execute(
            "delete from marts.mart_metrics where organization_id = "
            "(select min(organization_id) from marts.mart_metrics)"
        )
        row = con.execute("select count(*) from marts.mart_metrics").fetchone()
    assert row is not None
    return changed, int(row[0])


def test_a_reader_held_across_a_publish_neither_fails_nor_blocks_the_switch(
    pg_database, warehouse, tmp_path
) -> None:
    publish(pg_database, warehouse, 1)
    old_count = len(duck_rows(warehouse, "mart_metrics"))
    changed, new_count = _changed_copy(warehouse, tmp_path / "v2.duckdb")
    held = login(pg_database, "platform", None)
    probe = login(pg_database, "platform", None)
    watcher = postgres.connect(pg_database.url)
    answers: list[object] = []
    reading = threading.Event()
    release = threading.Event()

    def long_reader() -> None:
        """A BI session reading the marts in one transaction for as long as the switch is
        seen waiting for it: it keeps the old version's views locked meanwhile."""
        try:
            with held.transaction():
                query = "select count(*) from marts.mart_metrics"
                answers.append(held.execute(query).fetchone())
                reading.set()
                release.wait(120)
                answers.append(held.execute(query).fetchone())
        except psycopg.Error as exc:  # pragma: no cover - the failure this test looks for
            answers.append(exc)
        finally:
            reading.set()

    def releaser() -> None:
        """End the reader's transaction after the switch was seen waiting for its lock."""
        deadline = time.monotonic() + 120
        seen_at = None
        while time.monotonic() < deadline and not release.is_set():
            waiting = watcher.execute(
                "select count(*) from pg_stat_activity where application_name = "
                "'callmetrics' and wait_event_type = 'Lock' and pid <> pg_backend_pid()"
            ).fetchone()
            if waiting and waiting[0] and seen_at is None:
                seen_at = time.monotonic()
            if seen_at is not None and time.monotonic() - seen_at > 1.5:
                break
            time.sleep(0.02)
        release.set()

    waits: list[float] = []
    done = threading.Event()

    def new_readers() -> None:
        while not done.is_set():
            started = time.perf_counter()
            probe.execute("select count(*) from marts.mart_metrics").fetchone()
            waits.append(time.perf_counter() - started)
            time.sleep(0.05)

    threads = [threading.Thread(target=f) for f in (long_reader, releaser, new_readers)]
    threads[0].start()
    assert reading.wait(30)
    for thread in threads[1:]:
        thread.start()
    report = publish(pg_database, changed, 2)
    done.set()
    release.set()
    for thread in threads:
        thread.join()
    # the held reader saw the old version throughout and never failed
    assert answers == [(old_count,), (old_count,)]
    assert report.switch_attempts > 1  # it stepped back for the reader and retried
    # New readers queue behind a switch attempt for at most its lock budget (0.5 s), never for
    # the whole time the reader held the views; the bound is loose because the machine is shared.
    assert waits and max(waits) < 2.0, max(waits)
    count = probe.execute("select count(*) from marts.mart_metrics").fetchone()
    assert count == (new_count,)
    for con in (held, probe, watcher):
        con.close()


def test_a_failed_load_leaves_the_served_version_and_says_so(
    pg_database, warehouse, tmp_path
) -> None:
    publish(pg_database, warehouse, 1)
    changed, new_count = _changed_copy(warehouse, tmp_path / "v2.duckdb")
    old_rows = len(duck_rows(warehouse, "mart_metrics"))
    # the loader is killed (SIGKILL) in the middle of a COPY
    script = (
        "import sys; from pathlib import Path; from callmetrics.publishing import postgres; "
        "from callmetrics.settings import Settings; "
        "postgres.publish_duckdb_version(sys.argv[1], Path(sys.argv[2]), 2, 'v000002', "
        "settings=Settings.from_env())"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, pg_database.url, str(changed)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CALLMETRICS_FAULT_POINT": "postgres_mid_copy"},
        stderr=subprocess.PIPE,
        text=True,
    )
    _out, stderr = process.communicate(timeout=300)
    killed_pid = process.pid
    assert process.returncode == -9, stderr
    leftover = Path(tempfile.gettempdir()).glob(f"{postgres.SCRATCH_PREFIX}{killed_pid}-*")
    assert list(leftover)  # it died holding its CSV folder
    with login(pg_database, "platform", None) as platform:
        assert platform.execute("select version from marts.warehouse_version").fetchone() == (
            "v000001",
        )
        assert platform.execute("select count(*) from marts.mart_metrics").fetchone() == (
            old_rows,
        )
        # an injected failure in process: one line naming what still serves
        with pytest.raises(postgres.PostgresError) as failed:
            publish(pg_database, changed, 2, Settings(fault_point="postgres_load_error"))
        message = str(failed.value)
        assert "\n" not in message
        assert "injected failure" in message and "keeps serving v000001" in message
        assert platform.execute("select count(*) from marts.mart_metrics").fetchone() == (
            old_rows,
        )
        # the next publish clears what the failed loads left and serves the new version
        report = publish(pg_database, changed, 2)
        assert report.loaded == ["mart_metrics"]
        scratch = Path(tempfile.gettempdir()) / f"{postgres.SCRATCH_PREFIX}{killed_pid}-"
        assert not list(scratch.parent.glob(f"{scratch.name}*"))  # the killed loader's CSVs
        assert platform.execute("select count(*) from marts.mart_metrics").fetchone() == (
            new_count,
        )


def test_rollback_serves_the_previous_version_again_and_pruning_keeps_three(
    pg_database, warehouse, tmp_path
) -> None:
    publish(pg_database, warehouse, 1)
    old_rows = len(duck_rows(warehouse, "mart_metrics"))
    changed, new_count = _changed_copy(warehouse, tmp_path / "v2.duckdb")
    publish(pg_database, changed, 2)
    with login(pg_database, "platform", None) as platform:
        assert platform.execute("select count(*) from marts.mart_metrics").fetchone() == (
            new_count,
        )
        line = postgres.follow_rollback(Version(number=1, published_at=""), Settings())
        # the rollback hook follows CALLMETRICS_POSTGRES_URL; unset, it does nothing
        assert line is None
        configured = Settings(postgres_url=pg_database.url)
        assert postgres.follow_rollback(Version(number=1, published_at=""), configured) == (
            "PostgreSQL now serves v000001"
        )
        assert platform.execute("select count(*) from marts.mart_metrics").fetchone() == (
            old_rows,
        )
        assert postgres.follow_rollback(Version(number=1, published_at=""), configured) == (
            "PostgreSQL already serves v000001"
        )
        # later versions: only the newest three are kept, older schemas are dropped
        for number in (3, 4, 5):
            source = changed if number % 2 else warehouse
            publish(pg_database, source, number)
        with postgres.connect(pg_database.url) as admin:
            kept = admin.execute("select number from bi_access.versions order by 1")
            assert [r[0] for r in kept] == [3, 4, 5]
        schemas = platform.execute(
            "select nspname from pg_namespace where nspname like 'marts_v%' order by 1"
        ).fetchall()
        # v2 (rolled back) is gone; v1 stays because 3, 4 and 5 still read its unchanged tables
        assert [s[0] for s in schemas] == [
            "marts_v000001",
            "marts_v000003",
            "marts_v000004",
            "marts_v000005",
        ]
        with postgres.connect(pg_database.url) as admin:
            tables = admin.execute(
                "select table_name, schema_name from bi_access.version_tables "
                "where number = 5 order by 1"
            ).fetchall()
        assert dict(tables)["mart_metrics"] == "marts_v000005"
        assert {s for t, s in tables if t != "mart_metrics"} == {"marts_v000001"}


def test_bad_configuration_is_one_clear_line(pg_database, warehouse) -> None:
    port = pg_database.server.port
    cases = {
        "postgresql://callmetrics_loader@127.0.0.1:1/x": "Connection refused",
        f"postgresql://callmetrics_loader:wrong@127.0.0.1:{port}/{pg_database.name}": (
            "password authentication failed"
        ),
        pg_database.url.replace(pg_database.name, "no_such_db"): 'database "no_such_db"',
        "not a url at all": "not a valid PostgreSQL URL",
    }
    for url, reason in cases.items():
        with pytest.raises(postgres.PostgresError) as failed:
            postgres.publish_duckdb_version(url, warehouse, 1, "v000001")
        message = str(failed.value)
        assert "\n" not in message and reason in message, message
        assert "wrong" not in message  # never the password


def test_bi_user_command_creates_lists_and_revokes_logins(
    pg_database, warehouse, monkeypatch, capsys
) -> None:
    from callmetrics.cli import main

    publish(pg_database, warehouse, 1)
    org = organizations(warehouse)[0][0]
    monkeypatch.setenv(postgres.URL_ENV, pg_database.url)
    capsys.readouterr()
    assert main(["bi-user", "create", "--org", org]) == 0
    out, err = capsys.readouterr()
    printed = dict(line.split(":", 1) for line in out.splitlines())
    role, password = printed["role"].split()[0], printed["password"].strip()
    assert role.startswith("bi_org_") and org not in role  # names do not tell tenants' ids
    assert password not in err
    with psycopg.connect(pg_database.login_url(role, password)) as tenant:
        seen = tenant.execute("select distinct organization_id from marts.mart_metrics")
        assert [r[0] for r in seen] == [org]
    assert main(["bi-user", "list"]) == 0
    listing = capsys.readouterr().out
    assert role in listing and org in listing and password not in listing
    # the password reached the server only as a SCRAM verifier: not in its log
    log = pg_database.server.log_path.read_text(encoding="utf-8", errors="replace")
    assert password not in log
    with postgres.connect(pg_database.url) as admin:
        stored = admin.execute(
            "select count(*) from pg_stat_activity where query like %s", [f"%{password}%"]
        ).fetchone()
        assert stored == (0,)
    assert main(["bi-user", "create", "--org", "no-such-org"]) == 2
    assert "not in the published warehouse" in capsys.readouterr().err
    assert main(["bi-user", "revoke", role]) == 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_database.login_url(role, password))
    assert main(["bi-user", "list"]) == 0
    assert role not in capsys.readouterr().out
