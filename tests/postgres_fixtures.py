"""A real PostgreSQL server for the tests, started by `callmetrics postgres start` in a folder
of its own and stopped by its PID at the end of the session (one per xdist worker).

Each test gets a database of its own (`pg_database`), so versions and logins never leak
between tests; tenant role names are made unique because roles are cluster-wide.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callmetrics.publishing import postgres_server as server
from callmetrics.settings import POSTGRES_DIR_ENV, POSTGRES_PORT_ENV, Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class PostgresDatabase:
    server: server.Server
    name: str

    @property
    def url(self) -> str:
        return self.server.url.replace(f"/{server.DATABASE}?", f"/{self.name}?")

    def login_url(self, role: str, password: str) -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{self.server.port}/{self.name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[server.Server]:
    if server.find_bin_dir() is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
        )
    from callmetrics.cli import main

    base = Path(tempfile.mkdtemp(prefix="callmetrics-pg-test-"))
    base.chmod(0o755)  # the postgres user runs the server below it
    saved = {k: os.environ.get(k) for k in (POSTGRES_DIR_ENV, POSTGRES_PORT_ENV)}
    os.environ[POSTGRES_DIR_ENV] = str(base)
    os.environ[POSTGRES_PORT_ENV] = str(_free_port())
    where = server.Server.from_settings(Settings.from_env())
    try:
        assert main(["postgres", "start"]) == 0
        pid = where.pid()
        assert pid is not None
        yield where
    finally:
        server.stop(where)  # by the PID in postmaster.pid
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_database(postgres_server: server.Server) -> Iterator[PostgresDatabase]:
    import psycopg
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.superuser_conninfo(), autocommit=True) as con:
        con.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(name), sql.Identifier(server.LOADER)
            )
        )
    yield PostgresDatabase(postgres_server, name)
    with psycopg.connect(postgres_server.superuser_conninfo(), autocommit=True) as con:
        con.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def unique_role(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"
