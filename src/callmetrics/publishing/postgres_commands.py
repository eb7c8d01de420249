"""`callmetrics postgres start|stop|status` and `callmetrics bi-user create|list|revoke`."""

from __future__ import annotations

import argparse
import sys

from callmetrics.errors import UserError
from callmetrics.local_server import add_command, run_command
from callmetrics.settings import POSTGRES_URL_ENV, Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "postgres", "a private PostgreSQL server for development")
    p = sub.add_parser("bi-user", help="PostgreSQL logins for BI tools, restricted by row security")
    actions = p.add_subparsers(dest="bi_action", required=True)
    create = actions.add_parser("create", help="a login for one tenant or the platform")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--org", help="organization id: sees that organization's rows")
    scope.add_argument("--reseller", help="reseller id: sees its organizations' rows")
    scope.add_argument("--platform", action="store_true", help="the platform: every row")
    create.add_argument(
        "--name", help="role name (default: bi_org_<random>, bi_reseller_<random>, ...)"
    )
    actions.add_parser("list", help="the logins and what each sees")
    revoke = actions.add_parser("revoke", help="drop a login")
    revoke.add_argument("role", help="the role name shown by `bi-user list`")


def run_postgres(args: argparse.Namespace) -> int:
    from callmetrics.publishing import postgres_server as server

    where = server.Server.from_settings(Settings.from_env())
    export = f"export CALLMETRICS_POSTGRES_URL='{where.url}'"
    return run_command(
        args.action, "postgres", where, server.start, server.stop,
        use="publish into it with", export=export,
        status=lambda pid: [f"running: pid {pid}, port {where.port}, data {where.base}", export],
    )  # fmt: skip


def _url() -> str:
    url = Settings.from_env().postgres_url
    if url is None:
        raise UserError(
            f"{POSTGRES_URL_ENV} is not set: point it at the PostgreSQL database the marts are "
            "published to (`callmetrics postgres start` prints one for development)"
        )
    return url


def run_bi_user(args: argparse.Namespace) -> int:
    import psycopg

    from callmetrics.publishing import postgres, postgres_roles

    url = _url()
    con = postgres.connect(url, "connect to")
    try:
        if args.bi_action == "create":
            if args.org:
                scope, scope_id = "organization", args.org
            elif args.reseller:
                scope, scope_id = "reseller", args.reseller
            else:
                scope, scope_id = "platform", None
            login = postgres_roles.create_login(con, scope, scope_id, args.name)
            info = psycopg.conninfo.conninfo_to_dict(url)
            sees = (
                "every row"
                if scope == "platform"
                else f"{login.organizations} organization(s) of {scope} {scope_id}"
            )
            print(f"role:     {login.role}  ({sees})")
            print(f"password: {login.password}")
            print(f"host:     {info.get('host') or 'localhost'}")
            print(f"port:     {info.get('port') or 5432}")
            print(f"database: {info.get('dbname')}")
            print("schema:   marts")
            print(
                "callmetrics bi-user: the password is shown only now and stored nowhere "
                "(the server keeps its SCRAM verifier): give it to the tenant now",
                file=sys.stderr,
            )
            return 0
        if args.bi_action == "list":
            rows = postgres_roles.list_logins(con)
            if not rows:
                print("no BI logins yet: callmetrics bi-user create --org ID | --reseller ID")
                return 0
            width = max(len("role"), *(len(r[0]) for r in rows))
            id_width = max(len("id"), *(len(r[2] or "-") for r in rows))
            print(f"{'role':<{width}}  {'scope':<12}  {'id':<{id_width}}  {'orgs':>5}  created")
            for role, scope, scope_id, orgs, created in rows:
                print(
                    f"{role:<{width}}  {scope:<12}  {scope_id or '-':<{id_width}}  "
                    f"{orgs:>5}  {created}"
                )
            return 0
        postgres_roles.revoke_login(con, args.role)
        print(f"callmetrics bi-user: {args.role} dropped", file=sys.stderr)
        return 0
    except psycopg.Error as exc:
        raise UserError(f"PostgreSQL: {postgres._reason(exc)}") from None
    finally:
        con.close()
