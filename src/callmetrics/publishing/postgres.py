"""The second destination of the publish step: the marts and dimensions in PostgreSQL.

When CALLMETRICS_POSTGRES_URL is set, the publish step (after DuckDB published a version that
passed every test) copies that version's marts and dimensions into PostgreSQL:

1. **Load** each table that changed since the version PostgreSQL serves (same row fingerprint:
   reused as it is) into a new schema `marts_vNNNNNN`, named after the DuckDB version: one
   transaction per table (create, `COPY ... FROM STDIN` of DuckDB's CSV, indexes on
   (organization_id, bucket_start) and bucket_start, row security, grants, analyze). Nothing of
   it is visible to readers yet.
2. **Switch**: one transaction repoints the views of the stable schema `marts` (security
   invoker views, so row security applies to the reader), refreshes the organization →
   reseller mapping the policies read, and records the version. A BI query sees the old version
   or the new one, never a mix. The transaction first takes the views' locks with
   `lock_timeout` 200 ms inside a 500 ms statement budget; when a long reader holds one, it
   gives up, lets everybody through and retries (backoff up to 5 s, for at most
   CALLMETRICS_POSTGRES_SWITCH_WAIT seconds, default 300), so running queries never fail and a
   new reader never queues behind the switch for more than half a second.
3. **Prune**: versions beyond the DuckDB store's `keep` are forgotten and schemas no kept version
   reads are dropped (skipped, for the next publish, while a reader still holds one).

A failed load leaves the served version as it was (its views were never touched); the loaded
schema is dropped by the next publish. `callmetrics rollback` makes PostgreSQL serve the same
version as DuckDB again (`follow_rollback`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from callmetrics.errors import UserError
from callmetrics.publishing import duck
from callmetrics.publishing import postgres_roles as roles
from callmetrics.publishing.manifest import Version
from callmetrics.publishing.store import fault_point
from callmetrics.settings import (
    FAULT_POINT_ENV,
    POSTGRES_SWITCH_WAIT_ENV,
    POSTGRES_URL_ENV,
    Settings,
)

URL_ENV = POSTGRES_URL_ENV
SWITCH_WAIT_ENV = POSTGRES_SWITCH_WAIT_ENV
LOCK_TIMEOUT = "200ms"  # one lock wait of the switch
LOCK_BUDGET = "500ms"  # all the switch's lock waits together: what a new reader may queue
COPY_CHUNK = 1 << 20
PUBLISH_LOCK = "callmetrics publish"

_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TINYINT": "smallint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20)",
    "HUGEINT": "numeric(39)",
    "UHUGEINT": "numeric(39)",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PostgresError(UserError):
    """Publishing to PostgreSQL failed; the message is one line saying what serves now."""


@dataclass(frozen=True)
class Column:
    name: str
    duck_type: str

    @property
    def pg_type(self) -> str:
        if self.duck_type in _TYPES:
            return _TYPES[self.duck_type]
        match = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", self.duck_type)
        return f"numeric({match[1]},{match[2]})" if match else "text"

    def select_expr(self) -> str:
        quoted = _quote(self.name)
        return (
            quoted
            if self.pg_type != "text" or self.duck_type == "VARCHAR"
            else (f"cast({quoted} as varchar) as {quoted}")
        )


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: list[Column]
    rows: int
    fingerprint: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass
class PostgresReport:
    version: str
    target: str
    loaded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    switch_attempts: int = 0
    pruned: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"PostgreSQL {self.target} serves {self.version}: {len(self.loaded)} tables loaded "
            f"({self.rows_loaded} rows), {len(self.reused)} unchanged, "
            f"{self.seconds.get('total', 0.0):.1f} s"
        )


# --------------------------------------------------------------------- connecting


def describe(url: str) -> str:
    """user@host:port/database, never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable URL)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"{info.get('user') or os.environ.get('USER', '')}@{host}:{port}/{info.get('dbname')}"


def _reason(exc: BaseException) -> str:
    """The most telling line of a libpq error, on one line."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = " ".join((lines[0] if lines else "").split())
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r'connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", text)
    text = text.replace("FATAL: ", "")
    return text.strip() or type(exc).__name__


def connect(url: str, what: str = "publish to") -> psycopg.Connection:
    """An autocommit connection, or a PostgresError saying in one line why there is none."""
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise PostgresError(
            f"{URL_ENV} is not a valid PostgreSQL URL ({_reason(exc)}): "
            "use postgresql://user@host:port/database"
        ) from None
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
        extra = {} if "connect_timeout" in params else {"connect_timeout": 10}
        return psycopg.connect(url, autocommit=True, application_name="callmetrics", **extra)
    except psycopg.Error as exc:
        raise PostgresError(
            f"cannot {what} PostgreSQL at {describe(url)}: {_reason(exc)}; check {URL_ENV}"
        ) from None


@contextlib.contextmanager
def _publish_lock(con: psycopg.Connection) -> Iterator[None]:
    """One publish, rollback or login change at a time per database."""
    con.execute("set lock_timeout = '120s'")
    try:
        con.execute("select pg_advisory_lock(hashtext(%s))", [PUBLISH_LOCK])
    except psycopg.errors.LockNotAvailable:
        raise PostgresError(
            "another callmetrics publish or rollback holds the PostgreSQL database; try again"
        ) from None
    finally:
        con.execute("set lock_timeout = 0")
    try:
        yield
    finally:
        con.execute("select pg_advisory_unlock(hashtext(%s))", [PUBLISH_LOCK])


# --------------------------------------------------------------------- reading DuckDB


def source_tables(con: duckdb.DuckDBPyConnection) -> list[SourceTable]:
    """The marts and dimensions of a DuckDB warehouse, with a fingerprint of their rows
    (count and order-independent sum of row hashes, plus column names and types)."""
    names = [
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database() "
            "and schema_name = ? order by 1",
            [duck.MARTS_SCHEMA],
        ).fetchall()
        if row[0].startswith(duck.PARQUET_PREFIXES)
    ]
    tables = []
    for name in names:
        columns = [
            Column(r[0], r[1])
            for r in con.execute(
                "select column_name, data_type from duckdb_columns() where database_name = "
                "current_database() and schema_name = ? and table_name = ? order by column_index",
                [duck.MARTS_SCHEMA, name],
            ).fetchall()
        ]
        row = con.execute(
            f"select count(*), coalesce(sum(hash(t)::hugeint), 0) "
            f"from {duck.MARTS_SCHEMA}.{_quote(name)} as t"
        ).fetchone()
        count, total = (int(row[0]), int(row[1])) if row else (0, 0)
        signature = ",".join(f"{c.name}:{c.pg_type}" for c in columns)
        digest = hashlib.sha256(f"{signature}|{count}|{total}".encode()).hexdigest()[:32]
        tables.append(SourceTable(name, columns, count, digest))
    return tables


# --------------------------------------------------------------------- loading

SCRATCH_PREFIX = "callmetrics-pg-"


def _remove_stale_scratch() -> None:
    """CSV folders of publishers that died (a killed loader cannot clean up after itself)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid_text = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue


def _load_table(
    con: psycopg.Connection,
    duck_con: duckdb.DuckDBPyConnection,
    schema: str,
    table: SourceTable,
    scratch: Path,
    readers: list[str],
    injected_fault: str | None,
) -> None:
    """Create, fill (COPY), index, secure and analyze one table in one transaction."""
    csv = scratch / f"{table.name}.csv"
    select = ", ".join(c.select_expr() for c in table.columns)
    duck_con.execute(
        f"copy (select {select} from {duck.MARTS_SCHEMA}.{_quote(table.name)}) "
        f"to {_literal(str(csv))} (format csv, header false)"
    )
    target = sql.Identifier(schema, table.name)
    names = table.column_names
    column_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    with con.transaction():
        con.execute(
            sql.SQL("create table {} ({})").format(
                target,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type))
                    for c in table.columns
                ),
            )
        )
        with (
            con.cursor().copy(
                sql.SQL("copy {} ({}) from stdin (format csv)").format(target, column_list)
            ) as copy,
            csv.open("rb") as handle,
        ):
            first = True
            while chunk := handle.read(COPY_CHUNK):
                copy.write(chunk)
                if first:
                    first = False
                    fault_point(injected_fault, "postgres_mid_copy")  # test hook: dies mid-COPY
                    if injected_fault == "postgres_load_error":
                        raise RuntimeError(
                            f"injected failure ({FAULT_POINT_ENV}=postgres_load_error)"
                        )
        csv.unlink()
        for index_columns in _indexes(names):
            con.execute(
                sql.SQL("create index on {} ({})").format(
                    target, sql.SQL(", ").join(sql.Identifier(n) for n in index_columns)
                )
            )
        roles.secure_table(con, schema, table.name, names)
        con.execute(sql.SQL("analyze {}").format(target))
        if readers:
            con.execute(
                sql.SQL("grant select on {} to {}").format(
                    target, sql.SQL(", ").join(sql.Identifier(r) for r in readers)
                )
            )


def _indexes(columns: list[str]) -> list[list[str]]:
    """The common filters: one organization over a time range, and a time range."""
    found = []
    if "organization_id" in columns:
        found.append(
            ["organization_id", "bucket_start"]
            if "bucket_start" in columns
            else ["organization_id"]
        )
    if "bucket_start" in columns:
        found.append(["bucket_start"])
    if "reseller_id" in columns:
        found.append(["reseller_id"])
    return found


# --------------------------------------------------------------------- the catalog


def _live(con: psycopg.Connection) -> tuple[int, str] | None:
    row = con.execute(
        "select v.number, v.version from bi_access.live as l join bi_access.versions as v "
        "using (number)"
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _version_tables(con: psycopg.Connection, number: int) -> dict[str, tuple[str, str]]:
    """table name -> (schema, fingerprint) of a recorded version."""
    rows = con.execute(
        "select table_name, schema_name, fingerprint from bi_access.version_tables "
        "where number = %s",
        [number],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _schema_exists(con: psycopg.Connection, schema: str) -> bool:
    row = con.execute("select 1 from pg_namespace where nspname = %s", [schema]).fetchone()
    return row is not None


# --------------------------------------------------------------------- switching


def _switch(
    con: psycopg.Connection,
    number: int,
    version: str,
    tables: dict[str, tuple[str, str, int]],
    record: bool,
    wait: float,
) -> int:
    """Point the `marts` views at `tables` (name -> (schema, fingerprint, rows)) and refresh
    the mapping, in one transaction; retried while long readers hold the views. Returns the
    number of attempts."""
    deadline = time.monotonic() + wait
    pause = 0.5
    attempt = 0
    while True:
        attempt += 1
        try:
            _switch_once(con, number, version, tables, record)
            return attempt
        except (
            psycopg.errors.LockNotAvailable,
            psycopg.errors.QueryCanceled,
            psycopg.errors.DeadlockDetected,
        ):
            if time.monotonic() + pause > deadline:
                raise PostgresError(
                    f"readers held the PostgreSQL marts for {wait:.0f} s "
                    f"({SWITCH_WAIT_ENV}): {version} was loaded but not switched in"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _switch_once(
    con: psycopg.Connection,
    number: int,
    version: str,
    tables: dict[str, tuple[str, str, int]],
    record: bool,
) -> None:
    serving = roles.SERVING
    with con.transaction():
        existing = [
            r[0]
            for r in con.execute(
                "select c.relname from pg_class as c join pg_namespace as n "
                "on n.oid = c.relnamespace where n.nspname = %s and c.relkind = 'v' "
                "and c.relname <> 'warehouse_version' order by 1",
                [serving],
            ).fetchall()
        ]
        con.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
        if existing:
            con.execute(f"set local statement_timeout = '{LOCK_BUDGET}'")
            con.execute(
                sql.SQL("lock table {} in access exclusive mode").format(
                    sql.SQL(", ").join(sql.Identifier(serving, v) for v in existing)
                )
            )
            con.execute("set local statement_timeout = 0")
        for name in existing:
            if name not in tables:
                con.execute(sql.SQL("drop view {}").format(sql.Identifier(serving, name)))
        for name, (schema, _fingerprint, _rows) in sorted(tables.items()):
            view = sql.Identifier(serving, name)
            if name in existing:
                con.execute(sql.SQL("drop view {}").format(view))
            con.execute(
                sql.SQL("create view {} with (security_invoker = true) as select * from {}").format(
                    view, sql.Identifier(schema, name)
                )
            )
        roles.grant_reading(con, [serving], roles.readers(con))
        con.execute("delete from bi_access.organizations")
        if "dim_organizations" in tables:
            source = sql.Identifier(tables["dim_organizations"][0], "dim_organizations")
            con.execute(
                sql.SQL(
                    "insert into bi_access.organizations (organization_id, reseller_id) "
                    "select organization_id, reseller_id from {}"
                ).format(source)
            )
        if record:
            con.execute("delete from bi_access.versions where number = %s", [number])
            con.execute(
                "insert into bi_access.versions (number, version) values (%s, %s)",
                [number, version],
            )
            with con.cursor() as cur:
                cur.executemany(
                    "insert into bi_access.version_tables "
                    "(number, table_name, schema_name, fingerprint, row_count) "
                    "values (%s, %s, %s, %s, %s)",
                    [(number, n, s, f, r) for n, (s, f, r) in sorted(tables.items())],
                )
        con.execute(
            "insert into bi_access.live (number) values (%s) "
            "on conflict (only_row) do update set number = excluded.number",
            [number],
        )


# --------------------------------------------------------------------- pruning


def _prune(con: psycopg.Connection, keep: int) -> list[str]:
    """Forget versions beyond the newest `keep` (and rolled-back ones); drop schemas that no
    kept version reads. A schema a reader still holds is left for the next publish."""
    with con.transaction():
        con.execute(
            """
            delete from bi_access.versions
            where number <> coalesce((select number from bi_access.live), -1)
              and (rolled_back or number not in (
                  select number from bi_access.versions where not rolled_back
                  order by number desc limit %s))
            """,
            [keep],
        )
    used = {r[0] for r in con.execute("select schema_name from bi_access.version_tables")}
    candidates = [
        r[0]
        for r in con.execute(
            "select nspname from pg_namespace where nspname like %s order by 1",
            [roles.VERSION_PREFIX + "%"],
        ).fetchall()
        if re.fullmatch(rf"{roles.VERSION_PREFIX}\d+", r[0])
    ]
    dropped = []
    for schema in candidates:
        if schema in used:
            continue
        try:
            with con.transaction():
                con.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
                con.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
            dropped.append(schema)
        except psycopg.errors.LockNotAvailable:
            continue  # a reader still holds it; the next publish drops it
    return dropped


# --------------------------------------------------------------------- publish


def publish_duckdb_version(
    url: str,
    duck_path: Path,
    number: int,
    version: str,
    keep: int = 3,
    settings: Settings | None = None,
) -> PostgresReport:
    """Publish the marts and dimensions of the DuckDB file `duck_path` (published as
    `version`, number `number`) to PostgreSQL at `url` (`settings`: the switch's wait and the
    test hook; default values when None)."""
    settings = settings or Settings()
    started = time.perf_counter()
    report = PostgresReport(version=version, target=describe(url))
    con = connect(url)
    try:
        try:
            roles.ensure_setup(con)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PostgresError(
                f"PostgreSQL user {describe(url)} may not set up callmetrics ({_reason(exc)}): "
                "it needs CREATEROLE and ownership of the database (or superuser)"
            ) from None
        with _publish_lock(con):
            _publish_locked(con, duck_path, number, version, keep, report, settings)
    except psycopg.Error as exc:
        raise PostgresError(_failure_line(con, version, exc)) from None
    finally:
        con.close()
    report.seconds["total"] = round(time.perf_counter() - started, 3)
    return report


def _failure_line(con: psycopg.Connection, version: str, exc: BaseException) -> str:
    serving = "nothing"
    with contextlib.suppress(psycopg.Error):
        if not con.closed:
            con.rollback()
            found = _live(con)
            serving = found[1] if found else "nothing (no version published yet)"
    return (
        f"PostgreSQL publish of {version} failed ({_reason(exc)}): "
        f"PostgreSQL keeps serving {serving}"
    )


def _publish_locked(
    con: psycopg.Connection,
    duck_path: Path,
    number: int,
    version: str,
    keep: int,
    report: PostgresReport,
    settings: Settings,
) -> None:
    live = _live(con)
    if live is not None and live[0] == number:
        report.reused = sorted(_version_tables(con, number))
        return
    newest = con.execute("select max(number) from bi_access.versions").fetchone()
    if newest and newest[0] is not None and int(newest[0]) > number:
        raise PostgresError(
            f"PostgreSQL at {report.target} already holds v{int(newest[0]):06d}, newer than "
            f"{version}: it was published from another warehouse; point {URL_ENV} at a "
            "database of this warehouse's own"
        )
    _prune(con, keep)  # what a failed or killed load left
    previous = _version_tables(con, live[0]) if live else {}
    schema = f"{roles.VERSION_PREFIX}{number:06d}"
    t0 = time.perf_counter()
    _remove_stale_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        with duckdb.connect(str(duck_path), read_only=True) as duck_con:
            duck_con.execute("set TimeZone = 'UTC'")
            sources = source_tables(duck_con)
            if not sources:
                raise PostgresError(f"{duck_path} has no marts or dimensions to publish")
            t_fingerprint = time.perf_counter()
            readers = roles.readers(con)
            tables: dict[str, tuple[str, str, int]] = {}
            for table in sources:
                kept = previous.get(table.name)
                if kept and kept[1] == table.fingerprint and _schema_exists(con, kept[0]):
                    tables[table.name] = (kept[0], table.fingerprint, table.rows)
                    report.reused.append(table.name)
                    continue
                if not report.loaded:
                    con.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
                    con.execute(
                        sql.SQL("grant usage on schema {} to {}").format(
                            sql.Identifier(schema),
                            sql.SQL(", ").join(sql.Identifier(r) for r in readers),
                        )
                    )
                try:
                    _load_table(
                        con, duck_con, schema, table, scratch, readers, settings.fault_point
                    )
                except psycopg.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 - said in one line, nothing switched
                    raise PostgresError(
                        _failure_line(con, version, RuntimeError(f"{table.name}: {exc}"))
                    ) from None
                tables[table.name] = (schema, table.fingerprint, table.rows)
                report.loaded.append(table.name)
                report.rows_loaded += table.rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    t_loaded = time.perf_counter()
    report.switch_attempts = _switch(
        con, number, version, tables, record=True, wait=settings.postgres_switch_wait
    )
    t_switched = time.perf_counter()
    report.pruned = _prune(con, keep)
    report.seconds.update(
        {
            "fingerprint": round(t_fingerprint - t0, 3),
            "load": round(t_loaded - t_fingerprint, 3),
            "switch": round(t_switched - t_loaded, 3),
            "prune": round(time.perf_counter() - t_switched, 3),
        }
    )


# --------------------------------------------------------------------- hooks


def publish_if_configured(
    duck_path: Path, version: Version, keep: int, settings: Settings
) -> PostgresReport | None:
    """The publish step's hook: publish `version` when CALLMETRICS_POSTGRES_URL is set."""
    url = settings.postgres_url
    if url is None:
        return None
    return publish_duckdb_version(url, duck_path, version.number, version.name, keep, settings)


def follow_rollback(live: Version, settings: Settings) -> str | None:
    """After a DuckDB rollback, serve the same version from PostgreSQL; one line on what it
    serves (None when PostgreSQL is not configured)."""
    url = settings.postgres_url
    if url is None:
        return None
    con = connect(url, "roll back")
    try:
        roles.ensure_setup(con)
        with _publish_lock(con):
            current = _live(con)
            if current is not None and current[0] == live.number:
                return f"PostgreSQL already serves {live.name}"
            tables = _version_tables(con, live.number)
            row = con.execute(
                "select rolled_back from bi_access.versions where number = %s", [live.number]
            ).fetchone()
            missing = [s for s, _f in tables.values() if not _schema_exists(con, s)]
            if not tables or row is None or row[0] or missing:
                serving = current[1] if current else "nothing"
                raise PostgresError(
                    f"PostgreSQL has no copy of {live.name} (published before {URL_ENV} was "
                    f"set, or pruned): it keeps serving {serving}"
                )
            rows = con.execute(
                "select table_name, row_count from bi_access.version_tables where number = %s",
                [live.number],
            ).fetchall()
            counts = {r[0]: int(r[1]) for r in rows}
            _switch(
                con,
                live.number,
                live.name,
                {n: (s, f, counts.get(n, 0)) for n, (s, f) in tables.items()},
                record=False,
                wait=settings.postgres_switch_wait,
            )
            if current is not None:
                con.execute(
                    "update bi_access.versions set rolled_back = true where number = %s",
                    [current[0]],
                )
            return f"PostgreSQL now serves {live.name}"
    except psycopg.Error as exc:
        raise PostgresError(f"PostgreSQL rollback failed: {_reason(exc)}") from None
    finally:
        con.close()
