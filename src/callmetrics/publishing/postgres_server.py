"""A private PostgreSQL server for development and tests (`callmetrics postgres start|stop`).

The cluster lives under the project's data folder (`CALLMETRICS_POSTGRES_DIR`, default
`data/postgres`): `cluster/` (initdb's data directory, owned by the `postgres` user when we run
as root, because initdb refuses root), `run/` (the Unix socket, mode 0700), `postgres.log`, and
`loader.pgpass` (the loader's generated password, mode 0600). It listens on 127.0.0.1 at a
private port (`CALLMETRICS_POSTGRES_PORT`, default 54329); TCP logins use scram-sha-256, the
socket (reachable by its owner only) trusts the superuser for set-up.

The server makes one database, `callmetrics`, owned by the login `callmetrics_loader` (which may
create roles, for `callmetrics bi-user`); `start` prints the CALLMETRICS_POSTGRES_URL that
publishes into it. The URL names the password file, so no password is printed.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from callmetrics.errors import UserError
from callmetrics.local_server import alive, read_pid, terminate
from callmetrics.settings import POSTGRES_BIN_ENV as BIN_ENV
from callmetrics.settings import POSTGRES_DIR_ENV as DIR_ENV
from callmetrics.settings import Settings

DATABASE = "callmetrics"
LOADER = "callmetrics_loader"
SUPERUSER = "postgres"
OS_USER = "postgres"

# Settings of the private server. wal_level=minimal lets a table created and filled in one
# transaction skip the write-ahead log (the publish loads each table so).
SERVER_CONF = """
# --- callmetrics private server ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
unix_socket_permissions = 0700
wal_level = minimal
max_wal_senders = 0
max_connections = 50
shared_buffers = 256MB
maintenance_work_mem = 256MB
log_min_messages = warning
log_min_error_statement = panic
"""


def find_bin_dir(configured: Path | None = None) -> Path | None:
    """The folder of initdb and pg_ctl: `configured` (CALLMETRICS_POSTGRES_BIN), Debian's
    layout, or PATH."""
    candidates = [Path(configured)] if configured else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


@dataclass(frozen=True)
class Server:
    """Where a private server lives and how to reach it."""

    base: Path
    port: int
    bin_dir: Path | None = None  # None: Debian's layout, then PATH

    @classmethod
    def from_settings(cls, settings: Settings) -> Server:
        return cls(
            base=settings.postgres_dir, port=settings.postgres_port, bin_dir=settings.postgres_bin
        )

    @property
    def data_dir(self) -> Path:
        return self.base / "cluster"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    @property
    def passfile(self) -> Path:
        return self.base / "loader.pgpass"

    @property
    def url(self) -> str:
        """The loader's URL: CALLMETRICS_POSTGRES_URL for publishing into this server."""
        return (
            f"postgresql://{LOADER}@127.0.0.1:{self.port}/{DATABASE}"
            f"?passfile={self.passfile}&connect_timeout=5"
        )

    def superuser_conninfo(self) -> str:
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname=postgres"

    def pid(self) -> int | None:
        """The postmaster's PID when it is running (from postmaster.pid)."""
        pid = read_pid(self.data_dir / "postmaster.pid")
        return pid if pid is not None and alive(pid) else None


def _as_cluster_owner(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the postgres user when we are root."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        raise UserError(
            f"running as root, but there is no '{OS_USER}' user to run PostgreSQL as: "
            "install Debian's postgresql package (apt-get install postgresql)"
        ) from None
    return ["runuser", "-u", OS_USER, "--", *command]


def _give_to_cluster_owner(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _check_reachable(base: Path) -> None:
    """As root, the cluster is run by the postgres user: every folder above it must let others
    through (o+x), or initdb fails with a bare 'Permission denied'."""
    if os.geteuid() != 0:
        return
    for folder in base.parents:
        if not folder.stat().st_mode & 0o001:
            raise UserError(
                f"the {OS_USER} user cannot reach {base}: {folder} is closed to others; "
                f"chmod o+x {folder} or set {DIR_ENV} to a folder it can reach"
            )


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit status {done.returncode}"
        where = f" (server log: {log})" if log else ""
        raise UserError(f"{what} failed: {last}{where}")


def start(server: Server) -> bool:
    """Initialise the cluster if needed, start it, make the database and the loader.

    Returns False when it was already running."""
    bin_dir = find_bin_dir(server.bin_dir)
    if bin_dir is None:
        raise UserError(
            "PostgreSQL is not installed (no initdb/pg_ctl found): apt-get install postgresql, "
            f"or set {BIN_ENV} to the folder holding them"
        )
    if server.pid() is not None:
        _ensure_database(server)
        return False
    server.base.mkdir(parents=True, exist_ok=True)
    server.base.chmod(0o755)  # the postgres user must reach cluster/ and run/
    _check_reachable(server.base)
    if not (server.data_dir / "PG_VERSION").exists():
        if server.data_dir.exists():
            shutil.rmtree(server.data_dir)  # a half-made cluster from an interrupted start
        server.data_dir.mkdir(mode=0o700)
        _give_to_cluster_owner(server.data_dir)
        _run(
            _as_cluster_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(server.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ]
            ),
            "initdb",
        )
    server.socket_dir.mkdir(mode=0o700, exist_ok=True)
    _give_to_cluster_owner(server.socket_dir)
    conf = server.data_dir / "postgresql.auto.conf"
    conf_text = SERVER_CONF.format(port=server.port, socket_dir=server.socket_dir)
    _write_as_owner(conf, "# written by callmetrics postgres start\n" + conf_text)
    if not server.log_path.exists():
        server.log_path.touch()
    _give_to_cluster_owner(server.log_path)
    _run(
        _as_cluster_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_path),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        f"starting PostgreSQL on port {server.port}",
        server.log_path,
    )
    _ensure_database(server)
    return True


def _write_as_owner(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    _give_to_cluster_owner(path)


def _ensure_database(server: Server) -> None:
    """The loader login (its password generated once, kept in loader.pgpass) and the database."""
    import psycopg
    from psycopg import sql

    password = None
    if not server.passfile.exists():
        password = secrets.token_urlsafe(24)
    with psycopg.connect(server.superuser_conninfo(), autocommit=True) as con:
        exists = con.execute("select 1 from pg_roles where rolname = %s", [LOADER]).fetchone()
        if exists is None or password is not None:
            password = password or secrets.token_urlsafe(24)
            hashed = con.pgconn.encrypt_password(
                password.encode(), LOADER.encode(), b"scram-sha-256"
            ).decode()
            verb = "alter" if exists else "create"
            con.execute(
                sql.SQL("{} role {} login createrole password {}").format(
                    sql.SQL(verb), sql.Identifier(LOADER), sql.Literal(hashed)
                )
            )
            line = f"127.0.0.1:{server.port}:*:{LOADER}:{password}\n"
            fd = os.open(server.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(line)
        if con.execute("select 1 from pg_database where datname = %s", [DATABASE]).fetchone():
            return
        con.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(DATABASE), sql.Identifier(LOADER)
            )
        )
        # A database of its own: only the roles callmetrics grants may connect or make
        # temporary tables (on a shared server, do the same by hand).
        con.execute(
            sql.SQL("revoke all on database {} from public").format(sql.Identifier(DATABASE))
        )


def stop(server: Server, timeout: float = 60.0) -> bool:
    """Stop the server by its PID (fast shutdown); False when it was not running."""
    pid = server.pid()
    if pid is None:
        return False
    # fast shutdown (roll back sessions, checkpoint, exit), then immediate shutdown
    terminate(pid, timeout, polite=signal.SIGINT, firm=signal.SIGQUIT)
    return True
