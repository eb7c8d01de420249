"""Roles and row security of the PostgreSQL copy of the marts (docs: README, "BI on PostgreSQL").

- `callmetrics_owner` (no login) owns every object; the loader (the CALLMETRICS_POSTGRES_URL
  user) becomes it with `set role` to load and switch.
- `callmetrics_analyst` (no login): the platform's analysts, read-only, every row.
- tenant logins (`callmetrics bi-user create --org ID | --reseller ID`): read-only, and every
  mart and dimension has a row-security policy keeping `organization_id` to the tenant's
  organizations, looked up at query time in `bi_access.organizations` (refreshed from
  dim_organizations at each publish, so an organization that moves to another reseller moves
  with it). Tenants are members of no role, so `set role` has nothing to switch to, and they
  read the mapping only through `bi_access.visible_organizations()`, which returns their own.
- platform logins (`--platform`) are members of `callmetrics_analyst`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass

import psycopg
from psycopg import sql

from callmetrics.errors import UserError

OWNER = "callmetrics_owner"
ANALYST = "callmetrics_analyst"
ACCESS = "bi_access"  # mapping, logins, version catalog (readable by the owner only)
SERVING = "marts"  # the stable schema of views BI tools read
VERSION_PREFIX = "marts_v"  # versioned schemas: marts_v000042
SCOPES = ("organization", "reseller", "platform")

SETUP_SQL = """
create schema if not exists bi_access;
create schema if not exists marts;
create table if not exists bi_access.organizations (
    organization_id text primary key,
    reseller_id text
);
create table if not exists bi_access.logins (
    role_name text primary key,
    scope text not null check (scope in ('organization', 'reseller', 'platform')),
    scope_id text,
    created_at timestamptz not null default now()
);
create table if not exists bi_access.versions (
    number integer primary key,
    version text not null,
    published_at timestamptz not null default now(),
    rolled_back boolean not null default false
);
create table if not exists bi_access.version_tables (
    number integer not null references bi_access.versions on delete cascade,
    table_name text not null,
    schema_name text not null,
    fingerprint text not null,
    row_count bigint not null,
    primary key (number, table_name)
);
create table if not exists bi_access.live (
    only_row boolean primary key default true check (only_row),
    number integer not null
);
create or replace function bi_access.visible_organizations() returns setof text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
    select o.organization_id
    from bi_access.organizations as o
    join bi_access.logins as l on l.role_name = session_user::text
    where (l.scope = 'organization' and o.organization_id = l.scope_id)
       or (l.scope = 'reseller' and o.reseller_id = l.scope_id)
       or l.scope = 'platform'
$$;
create or replace function bi_access.visible_resellers() returns setof text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
    select o.reseller_id
    from bi_access.organizations as o
    where o.organization_id in (select bi_access.visible_organizations())
    union
    select l.scope_id from bi_access.logins as l
    where l.role_name = session_user::text and l.scope = 'reseller'
$$;
revoke all on function bi_access.visible_organizations() from public;
revoke all on function bi_access.visible_resellers() from public;
create or replace view marts.warehouse_version as
    select v.version, v.number, v.published_at
    from bi_access.versions as v
    join bi_access.live as l using (number);
"""


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def ensure_setup(con: psycopg.Connection) -> None:
    """Create the roles, schemas, catalog and functions if missing (idempotent); leaves the
    session as the owner role. The connecting user must be a superuser or have CREATEROLE."""
    con.execute("reset role")
    for role in (OWNER, ANALYST):
        if con.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject):  # made concurrently
                con.execute(sql.SQL("create role {} nologin").format(_ident(role)))
    member = con.execute("select pg_has_role(current_user, %s, 'member')", [OWNER]).fetchone()
    if not (member and member[0]):
        con.execute(sql.SQL("grant {} to current_user").format(_ident(OWNER)))
    db = con.info.dbname
    con.execute(
        sql.SQL("grant create, connect on database {} to {}").format(_ident(db), _ident(OWNER))
    )
    con.execute(sql.SQL("grant connect on database {} to {}").format(_ident(db), _ident(ANALYST)))
    con.execute(sql.SQL("set role {}").format(_ident(OWNER)))
    with con.transaction():
        con.execute("select pg_advisory_xact_lock(hashtext('callmetrics bi_access setup'))")
        con.execute(SETUP_SQL)  # type: ignore[arg-type]
        con.execute(
            sql.SQL(
                "grant usage on schema bi_access, marts to {a}; "
                "grant execute on function bi_access.visible_organizations(), "
                "bi_access.visible_resellers() to {a}; "
                "grant select on marts.warehouse_version to {a}"
            ).format(a=_ident(ANALYST))
        )


def readers(con: psycopg.Connection) -> list[str]:
    """The roles that read the marts: the analysts' role and every tenant login."""
    rows = con.execute(
        "select l.role_name from bi_access.logins as l join pg_roles as r "
        "on r.rolname = l.role_name where l.scope <> 'platform' order by 1"
    ).fetchall()
    return [ANALYST, *[r[0] for r in rows]]


def row_filter(columns: list[str]) -> sql.Composable | None:
    """The tenant policy's condition for a table with these columns (None: platform only)."""
    if "organization_id" in columns:
        return sql.SQL("organization_id in (select bi_access.visible_organizations())")
    if "reseller_id" in columns:
        return sql.SQL("reseller_id in (select bi_access.visible_resellers())")
    return None


def secure_table(con: psycopg.Connection, schema: str, table: str, columns: list[str]) -> None:
    """Row security on a loaded table: the analysts see every row, a tenant its own."""
    target = sql.Identifier(schema, table)
    con.execute(sql.SQL("alter table {} enable row level security").format(target))
    con.execute(
        sql.SQL("create policy platform_rows on {} for select to {} using (true)").format(
            target, _ident(ANALYST)
        )
    )
    condition = row_filter(columns)
    if condition is not None:
        con.execute(
            sql.SQL("create policy tenant_rows on {} for select to public using ({})").format(
                target, condition
            )
        )


def grant_reading(con: psycopg.Connection, schemas: list[str], roles: list[str]) -> None:
    """Let `roles` read every table and view of `schemas` (row security still applies)."""
    if not roles or not schemas:
        return
    role_list = sql.SQL(", ").join(_ident(r) for r in roles)
    schema_list = sql.SQL(", ").join(_ident(s) for s in schemas)
    con.execute(
        sql.SQL(
            "grant usage on schema {s} to {r}; grant select on all tables in schema {s} to {r}"
        ).format(s=schema_list, r=role_list)
    )


# --------------------------------------------------------------------- tenant logins


@dataclass(frozen=True)
class NewLogin:
    role: str
    password: str
    scope: str
    scope_id: str | None
    organizations: int


def _role_name(scope: str) -> str:
    """A random name: every login can list role names (pg_roles), so a name must not tell
    which organization or reseller another tenant is (`bi-user list` says it)."""
    prefix = {"organization": "bi_org", "reseller": "bi_reseller", "platform": "bi_platform"}[scope]
    return f"{prefix}_{secrets.token_hex(4)}"


def create_login(
    con: psycopg.Connection, scope: str, scope_id: str | None, name: str | None = None
) -> NewLogin:
    """A login for one organization, one reseller or the platform, with a generated password.

    The password is hashed here (SCRAM) so that only its verifier reaches the server."""
    if scope not in SCOPES:
        raise UserError(f"unknown scope {scope!r}")
    ensure_setup(con)
    if scope == "organization":
        found = con.execute(
            "select count(*) from bi_access.organizations where organization_id = %s", [scope_id]
        ).fetchone()
    elif scope == "reseller":
        found = con.execute(
            "select count(*) from bi_access.organizations where reseller_id = %s", [scope_id]
        ).fetchone()
    else:
        found = con.execute("select count(*) from bi_access.organizations").fetchone()
    count = int(found[0]) if found else 0
    if scope != "platform" and count == 0:
        published = con.execute("select count(*) from bi_access.live").fetchone()
        if not published or not published[0]:
            raise UserError(
                "nothing is published to PostgreSQL yet: run `callmetrics build` with "
                "CALLMETRICS_POSTGRES_URL set first"
            )
        raise UserError(f"{scope} {scope_id!r} is not in the published warehouse")
    role = name or _role_name(scope)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise UserError(f"role name {role!r}: use lower-case letters, digits and _ (max 63)")
    if con.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone():
        raise UserError(f"role {role} already exists: revoke it first or pass --name")
    password = secrets.token_urlsafe(24)
    verifier = con.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256"
    ).decode()
    con.execute("reset role")
    with con.transaction():
        con.execute(
            sql.SQL(
                "create role {} login nosuperuser noinherit nocreatedb nocreaterole "
                "noreplication nobypassrls connection limit 20 password {}"
            ).format(_ident(role), sql.Literal(verifier))
        )
        con.execute(
            sql.SQL("alter role {} set default_transaction_read_only = on").format(_ident(role))
        )
        if scope == "platform":
            con.execute(sql.SQL("grant {} to {}").format(_ident(ANALYST), _ident(role)))
            con.execute(sql.SQL("alter role {} inherit").format(_ident(role)))
        if scope != "platform":
            con.execute(
                sql.SQL("grant connect on database {} to {}").format(
                    _ident(con.info.dbname), _ident(role)
                )
            )
        con.execute(sql.SQL("set local role {}").format(_ident(OWNER)))
        con.execute(
            "insert into bi_access.logins (role_name, scope, scope_id) values (%s, %s, %s)",
            [role, scope, scope_id],
        )
        if scope != "platform":
            con.execute(
                sql.SQL(
                    "grant usage on schema bi_access, marts to {r}; "
                    "grant execute on function bi_access.visible_organizations(), "
                    "bi_access.visible_resellers() to {r}; "
                    "grant select on marts.warehouse_version to {r}"
                ).format(r=_ident(role))
            )
            grant_reading(con, served_schemas(con), [role])
    return NewLogin(role, password, scope, scope_id, count)


def served_schemas(con: psycopg.Connection) -> list[str]:
    """`marts` and every versioned schema a kept version reads."""
    rows = con.execute(
        "select distinct schema_name from bi_access.version_tables order by 1"
    ).fetchall()
    return [SERVING, *[r[0] for r in rows]]


def list_logins(con: psycopg.Connection) -> list[tuple[str, str, str | None, int, str]]:
    """(role, scope, scope id, organizations visible now, created at) for every login."""
    ensure_setup(con)
    rows = con.execute(
        """
        select l.role_name, l.scope, l.scope_id,
               (select count(*) from bi_access.organizations as o
                where l.scope = 'platform'
                   or (l.scope = 'organization' and o.organization_id = l.scope_id)
                   or (l.scope = 'reseller' and o.reseller_id = l.scope_id)),
               to_char(l.created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI"Z"')
        from bi_access.logins as l order by 1
        """
    ).fetchall()
    return [(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows]


def revoke_login(con: psycopg.Connection, role: str) -> None:
    """Drop a login made by `bi-user create`: its privileges, its sessions, the role."""
    ensure_setup(con)
    known = con.execute("select 1 from bi_access.logins where role_name = %s", [role]).fetchone()
    if known is None:
        raise UserError(f"{role} is not a login made by `callmetrics bi-user create`")
    # Open sessions of the role end now (best effort: needs pg_signal_backend or membership).
    with contextlib.suppress(psycopg.Error):
        con.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", [role]
        )
    with con.transaction():
        exists = con.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone()
        if exists:
            schemas = sql.SQL(", ").join(_ident(s) for s in served_schemas(con))
            con.execute(
                sql.SQL(
                    "revoke all on all tables in schema {s} from {r}; "
                    "revoke all on schema {s}, bi_access from {r}; "
                    "revoke all on function bi_access.visible_organizations(), "
                    "bi_access.visible_resellers() from {r}; "
                    "revoke all on marts.warehouse_version from {r}"
                ).format(s=schemas, r=_ident(role))
            )
        con.execute("delete from bi_access.logins where role_name = %s", [role])
        con.execute("reset role")
        if exists:
            con.execute(
                sql.SQL("revoke all on database {} from {}").format(
                    _ident(con.info.dbname), _ident(role)
                )
            )
            con.execute(sql.SQL("drop role {}").format(_ident(role)))
