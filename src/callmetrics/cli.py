"""The `callmetrics` command line (contract: ../shared/spec/interfaces.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from callmetrics.errors import UserError


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write a synthetic raw directory")
    p.add_argument("--out", required=True, help="raw directory to write")
    p.add_argument("--calls", type=int, default=20_000, help="number of calls (default 20000)")
    p.add_argument("--days", type=int, default=60, help="days of history (default 60)")
    p.add_argument("--orgs", type=int, default=12, help="organizations (default 12)")
    p.add_argument("--resellers", type=int, default=3, help="resellers (default 3)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument(
        "--end", default=None, help="last day of calls, YYYY-MM-DD (default: yesterday, UTC)"
    )
    p.add_argument(
        "--dirt-rate", type=float, default=0.01, help="share of dirty rows (default 0.01)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument(
        "--force", action="store_true", help="replace the raw tables already in --out"
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="print one Get Metrics payload as JSON")
    p.add_argument("--start", required=True, help="start of range, ISO 8601 (inclusive)")
    p.add_argument("--end", required=True, help="end of range, ISO 8601 (inclusive)")
    p.add_argument("--org", default=None, help="organization id")
    p.add_argument("--reseller", default=None, help="reseller id")
    _add_calendar_options(p, "IANA time zone of dates, hours and naive times (default UTC)")
    p.add_argument(
        "--out", default=None, help="write to this regular file (- or none: standard output)"
    )
    p = sub.add_parser("export-all", help="one payload file per organization and reseller")
    p.add_argument("--start", required=True, help="start of range, ISO 8601 (inclusive)")
    p.add_argument("--end", required=True, help="end of range, ISO 8601 (inclusive)")
    _add_calendar_options(p, "IANA time zone, or 'org': each organization's own (default UTC)")
    p.add_argument("--out", required=True, help="directory to write the payload files to")


def _add_api(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve GET /v1/metrics over HTTP (api.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--pool-size", type=int, default=None,
                   help="read-only warehouse connections per worker (default 4)")
    p.add_argument("--cache-mb", type=int, default=None,
                   help="answers kept per warehouse version, in MiB (default 64; 0: none)")
    p = sub.add_parser("keys", help="create, list or revoke API keys (CALLMETRICS_KEYS)")
    keys = p.add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="make a key; prints it once on standard output")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--org", help="the key sees this organization")
    scope.add_argument("--reseller", help="the key sees this reseller's organizations")
    scope.add_argument("--platform", action="store_true", help="the key sees everything")
    create.add_argument("--name", default=None, help="a label for people (who holds the key)")
    keys.add_parser("list", help="every key: id, name, scope, created, revoked; no secret")
    revoke = keys.add_parser("revoke", help="refuse a key from the next request on")
    revoke.add_argument("key_id", help="the key's id (as `keys list` shows it)")


def _add_calendar_options(p: argparse.ArgumentParser, tz_help: str) -> None:
    """--tz, --granularity, --compare (metrics.md, "Time zones and calendars"); checked by
    the exporter so that a bad value is one clear line."""
    p.add_argument("--tz", default=None, metavar="ZONE", help=tz_help)
    p.add_argument("--granularity", default=None, metavar="day|week|month",
                   help="period of each dailyVolume entry (default day)")
    p.add_argument("--compare", default=None, metavar="previous",
                   help="add previousPeriod: the same metrics over the period just before")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callmetrics",
        description="Voice-agent call metrics warehouse: generate, build, export.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    p = sub.add_parser("build", help="run the nightly pipeline once (snapshot, models, tests)")
    p.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    _add_export(sub)
    p = sub.add_parser("rollback", help="serve the previous published warehouse version again")
    p.add_argument("--list", action="store_true", help="list the kept versions, change nothing")
    _add_api(sub)
    p = sub.add_parser("demo", help="generate demo data if missing, build, export-all")
    p.add_argument("--calls", type=int, default=20_000, help="calls in the demo data")
    p.add_argument("--out", help="folder of the payloads' folder (default: data/exports)")
    from callmetrics.publishing.postgres_commands import add_parsers as add_postgres_parsers

    add_postgres_parsers(sub)
    from callmetrics.spark.commands import add_parsers as add_spark_parsers

    add_spark_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except UserError as exc:
        print(f"callmetrics {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("callmetrics: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    # Imports are local so that `callmetrics --help` and `generate` stay fast.
    if args.command == "generate":
        from callmetrics.generate import run_generate

        return run_generate(args)
    if args.command == "build":
        from callmetrics.pipeline import run_build

        return run_build(full_refresh=args.full_refresh)
    if args.command == "export":
        from callmetrics.exporter.commands import run_export

        return run_export(args)
    if args.command == "export-all":
        from callmetrics.exporter.commands import run_export_all

        return run_export_all(args)
    if args.command == "rollback":
        from callmetrics.rollback import run_rollback

        return run_rollback(args)
    if args.command == "serve":
        from callmetrics.api.server import run_serve

        return run_serve(args)
    if args.command == "keys":
        from callmetrics.api.commands import run_keys

        return run_keys(args)
    if args.command == "demo":
        from callmetrics.demo import run_demo

        # its export-all is the command's own: parsed, every option at its default
        return run_demo(calls=args.calls, out=args.out, parse=build_parser().parse_args)
    if args.command == "postgres":
        from callmetrics.publishing.postgres_commands import run_postgres

        return run_postgres(args)
    if args.command == "bi-user":
        from callmetrics.publishing.postgres_commands import run_bi_user

        return run_bi_user(args)
    if args.command == "spark":
        from callmetrics.spark.commands import run_spark

        return run_spark(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
