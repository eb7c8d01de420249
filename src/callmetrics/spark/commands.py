"""`callmetrics spark start|stop|status`: the local Thrift server (callmetrics.spark.server)."""

from __future__ import annotations

import argparse
import sys

from callmetrics.settings import SPARK_PORT_ENV, TARGET_ENV


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spark", help="a local Spark Thrift server for CALLMETRICS_TARGET=spark")
    p.add_argument("action", choices=["start", "stop", "status"])


def run_spark(args: argparse.Namespace) -> int:
    from callmetrics.spark import server

    where = server.Server.from_settings()
    if args.action == "start":
        if where.pid() is None:
            print(
                f"callmetrics spark: starting a Thrift server on {where.host}:{where.port} "
                f"(about 20 s; log {where.log_path})",
                file=sys.stderr,
            )
        started = server.start(where)
        state = "started" if started else "already running"
        print(
            f"callmetrics spark: {state} (pid {where.pid()}, port {where.port}, "
            f"data {where.base}); build on it with:",
            file=sys.stderr,
        )
        print(f"export {TARGET_ENV}=spark {SPARK_PORT_ENV}={where.port}")
        return 0
    if args.action == "stop":
        stopped = server.stop(where)
        print(
            f"callmetrics spark: {'stopped' if stopped else 'not running'} ({where.base})",
            file=sys.stderr,
        )
        return 0
    pid = where.pid()
    if pid is None:
        print(f"not running ({where.base})")
        return 3
    state = "listening" if where.listening() else "not listening yet"
    print(f"running: pid {pid}, {where.host}:{where.port} {state}, data {where.base}")
    return 0
