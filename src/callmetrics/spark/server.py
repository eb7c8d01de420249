"""A local Spark Thrift server for development and tests (`callmetrics spark start|stop|status`).

dbt-spark's `thrift` method talks to it as it would to a cluster's (EMR, Dataproc): the same
HiveServer2 protocol. pyspark's wheel ships Spark's jars and `bin/spark-submit` but not
`start-thriftserver.sh`, so the server is started as that script would:
`spark-submit --class ...HiveThriftServer2 spark-internal`, in local mode.

Everything it keeps lives in one folder (`CALLMETRICS_SPARK_DIR`, default `data/spark`):
`warehouse/` (the tables: plain Parquet folders, one per table, `<schema>.db/<table>`),
`metastore_db/` (the embedded Derby metastore: one server per folder), `scratch/` and `tmp/`
(Spark's and Hive's scratch space), `thriftserver.log` (its output) and `thriftserver.pid`. It
listens on `CALLMETRICS_SPARK_HOST`:`CALLMETRICS_SPARK_PORT` (default 127.0.0.1:10000), and is
stopped by its PID (TERM, then KILL).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from callmetrics.errors import UserError
from callmetrics.local_server import alive, port_open, read_pid, terminate, wait_for_port
from callmetrics.settings import SPARK_DIR_ENV, SPARK_PORT_ENV, Settings
from callmetrics.spark.extra import require_java, spark_home
from callmetrics.spark.hive_jars import require_jar

MAIN_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
START_TIMEOUT = 180.0  # about 20 s on an idle machine; a busy one is much slower
STOP_TIMEOUT = 30.0
# Local mode on the project's two cores. AQE (on by default) coalesces small shuffle
# partitions; a small default keeps task overhead low on one machine (tiny test data: fewer).
MASTER = "local[2]"
SHUFFLE_PARTITIONS = 8


@dataclass(frozen=True)
class Server:
    """Where a local server keeps its state, and where it listens."""

    base: Path
    host: str
    port: int
    memory: str = "4g"
    shuffle_partitions: int = SHUFFLE_PARTITIONS

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Server:
        settings = settings or Settings.from_env()
        return cls(
            base=settings.spark_dir,
            host=settings.spark_host,
            port=settings.spark_port,
            memory=settings.spark_memory,
        )

    @property
    def warehouse_dir(self) -> Path:
        return self.base / "warehouse"

    @property
    def metastore_dir(self) -> Path:
        return self.base / "metastore_db"

    @property
    def log_path(self) -> Path:
        return self.base / "thriftserver.log"

    @property
    def pid_path(self) -> Path:
        return self.base / "thriftserver.pid"

    def pid(self) -> int | None:
        """The server's PID when it is running (from the PID file, checked against /proc)."""
        pid = read_pid(self.pid_path)
        return pid if pid is not None and _is_our_server(pid, self.base) else None

    def listening(self) -> bool:
        return port_open(self.host, self.port)

    def command(self) -> list[str]:
        """The spark-submit command line of this server."""
        home = spark_home()
        metastore = f"jdbc:derby:;databaseName={self.metastore_dir};create=true"
        confs = {
            "spark.hadoop.hive.server2.thrift.port": str(self.port),
            "spark.hadoop.hive.server2.thrift.bind.host": self.host,
            "spark.sql.warehouse.dir": str(self.warehouse_dir),
            "spark.hadoop.javax.jdo.option.ConnectionURL": metastore,
            "spark.hadoop.hive.exec.scratchdir": str(self.base / "scratch"),
            "spark.hadoop.hive.exec.local.scratchdir": str(self.base / "scratch"),
            "spark.local.dir": str(self.base / "tmp"),
            # every timestamp is a UTC instant (the models' dates and hours are UTC ones)
            "spark.sql.session.timeZone": "UTC",
            # timestamps written as Parquet's UTC-adjusted microseconds (not legacy INT96):
            # DuckDB reads them back as the same instants (callmetrics.spark.marts)
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.ui.enabled": "false",  # no web UI port to collide with other servers
        }
        command = [
            str(home / "bin" / "spark-submit"),
            "--class",
            MAIN_CLASS,
            "--master",
            MASTER,
            "--name",
            f"callmetrics-thrift-{self.port}",
            "--driver-memory",
            self.memory,
            # Hive's function registry, which a closing session may load (spark/hive_jars.py)
            "--driver-class-path",
            str(require_jar()),
            # derby.log under the server's folder; the folder named on the command line marks
            # the process as this server's (see _is_our_server)
            "--driver-java-options",
            f"-Dderby.system.home={self.base} -Djava.io.tmpdir={self.base / 'tmp'}",
        ]
        for key, value in confs.items():
            command += ["--conf", f"{key}={value}"]
        return [*command, "spark-internal"]


def _is_our_server(pid: int, base: Path) -> bool:
    """The PID is alive and is a Thrift server of this folder (not a reused PID)."""
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the PID file
    return MAIN_CLASS in cmdline and f"-Dderby.system.home={base}" in cmdline


def log_tail(server: Server, lines: int = 1) -> str:
    """The last meaningful lines of the server's log (errors first when there are some)."""
    try:
        text = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    text = [line.strip() for line in text if line.strip()]
    errors = [line for line in text if "Exception" in line or "ERROR" in line]
    chosen = (errors or text)[-lines:]
    return " | ".join(chosen) if chosen else "(empty log)"


def start(server: Server, timeout: float = START_TIMEOUT) -> bool:
    """Start the server and wait until it accepts connections; False if it was running."""
    if server.pid() is not None:
        if not wait_for_port(server.host, server.port, timeout, lambda: server.pid() is None):
            raise UserError(
                f"the Spark Thrift server (pid {server.pid()}) is running but not listening on "
                f"{server.host}:{server.port}: stop it with `callmetrics spark stop` "
                f"(log: {server.log_path})"
            )
        return False
    require_java()
    command = server.command()
    if server.listening():
        raise UserError(
            f"port {server.port} on {server.host} is taken by another process: set "
            f"{SPARK_PORT_ENV} to a free port"
        )
    for folder in (server.base, server.base / "tmp", server.base / "scratch"):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": server.host if server.host[:1].isdigit() else "127.0.0.1",
    }
    env.pop("SPARK_CONF_DIR", None)
    with server.log_path.open("w", encoding="utf-8") as log:
        log.write(f"# callmetrics spark start: {' '.join(command)}\n")
        log.flush()
        # a session of its own: the server outlives the command (and is not hit by its Ctrl-C)
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=server.base,
            env=env,
            start_new_session=True,
        )
    # spark-submit execs the JVM: the PID stays the server's
    server.pid_path.write_text(f"{process.pid}\n", encoding="utf-8")
    if not wait_for_port(server.host, server.port, timeout, lambda: process.poll() is not None):
        exited = process.poll()
        terminate(process.pid, STOP_TIMEOUT)
        server.pid_path.unlink(missing_ok=True)
        what = (
            f"exited with status {exited}"
            if exited is not None
            else f"did not listen on {server.host}:{server.port} within {timeout:.0f} s"
        )
        raise UserError(
            f"the Spark Thrift server {what}: {log_tail(server)} (log: {server.log_path}; "
            f"its folder is {SPARK_DIR_ENV}={server.base})"
        )
    return True


def stop(server: Server, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the server by its PID; False when it was not running."""
    pid = server.pid()
    if pid is None:
        server.pid_path.unlink(missing_ok=True)
        return False
    terminate(pid, timeout)  # TERM: Spark stops its session and the metastore cleanly
    server.pid_path.unlink(missing_ok=True)
    return True
