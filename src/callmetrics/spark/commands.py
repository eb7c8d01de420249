"""`callmetrics spark start|stop|status`: the local Thrift server (callmetrics.spark.server)."""

from __future__ import annotations

import argparse

from callmetrics.local_server import add_command, run_command
from callmetrics.settings import SPARK_PORT_ENV, TARGET_ENV


def add_parsers(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "spark", "a local Spark Thrift server for CALLMETRICS_TARGET=spark")


def run_spark(args: argparse.Namespace) -> int:
    from callmetrics.spark import server

    where = server.Server.from_settings()

    def status(pid: int) -> list[str]:
        state = "listening" if where.listening() else "not listening yet"
        return [f"running: pid {pid}, {where.host}:{where.port} {state}, data {where.base}"]

    return run_command(
        args.action, "spark", where, server.start, server.stop,
        use="build on it with", export=f"export {TARGET_ENV}=spark {SPARK_PORT_ENV}={where.port}",
        status=status,
        starting=f"starting a Thrift server on {where.host}:{where.port} (about 20 s; log "
        f"{where.log_path})",
    )  # fmt: skip
