"""``python -m callmetrics.bench --calls N [--days D] [--out bench/results]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from callmetrics.bench.measure import StepFailed
from callmetrics.bench.report import render_markdown
from callmetrics.bench.runner import Bench, BenchConfig
from callmetrics.settings import PROJECT_ROOT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m callmetrics.bench",
        description="Generate, build, increment and export at one scale, timing every step "
        "and its peak memory against the floor query and a naive pandas script.",
    )
    p.add_argument("--calls", type=int, required=True, help="number of calls to generate")
    p.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results",
                   help="folder for the result tables (default bench/results)")  # fmt: skip
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder for raw data and warehouse "
                   "(default bench/tmp/<label>; emptied first)")  # fmt: skip
    p.add_argument("--orgs", type=int, default=100, help="organizations (default 100)")
    p.add_argument("--resellers", type=int, default=10, help="resellers (default 10)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--end", default=None, help="last day of calls, YYYY-MM-DD")
    p.add_argument("--memory-limit", default=None,
                   help="DuckDB memory_limit for the build and the floor (e.g. 10GB); sets "
                   "CALLMETRICS_DUCKDB_MEMORY_LIMIT")  # fmt: skip
    p.add_argument("--export-runs", type=int, default=100,
                   help="timed payloads per warm export (default 100)")  # fmt: skip
    p.add_argument("--all-orgs-runs", type=int, default=10,
                   help="timed all-organizations payloads (default 10)")  # fmt: skip
    p.add_argument("--naive-runs", type=int, default=3, help="naive pandas runs (default 3)")
    p.add_argument("--name", default=None, help="result file name (default calls-N-days-D)")
    p.add_argument("--note", action="append", default=[], help="a line added to the report")
    p.add_argument("--raw", type=Path, default=None,
                   help="an existing raw directory to use (read-only: mirrored as symbolic "
                   "links under --work) instead of generating one; give --calls and --days "
                   "as it was generated")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep raw data and warehouse")
    p.add_argument("--no-touched-build", action="store_true",
                   help="skip the build after one raw file is rewritten with the same rows, so "
                   "that two warehouse versions are on disk at most instead of three (10M "
                   "calls: about 21 GB each)")  # fmt: skip
    p.add_argument("--increment-as-of", type=int, default=None, metavar="CALLS",
                   help="generate the increment of a history of CALLS calls (its new day and "
                   "its late work) instead of this history's own: --calls 10000000 "
                   "--increment-as-of 1000000 gives the 1M run's arrival on a 10M "
                   "history")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="reuse the raw data in --work and the measured generate, inspect, "
                   "floor and naive steps of an earlier attempt that stopped later")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.calls < 1 or args.days < 1:
        print("bench: error: --calls and --days must be positive", file=sys.stderr)
        return 2
    if args.increment_as_of is not None and not 1 <= args.increment_as_of <= args.calls:
        print("bench: error: --increment-as-of must be from 1 to --calls", file=sys.stderr)
        return 2
    config = BenchConfig(
        calls=args.calls, days=args.days, out=args.out.resolve(), seed=args.seed, end=args.end,
        orgs=args.orgs, resellers=args.resellers,
        work=(args.work or PROJECT_ROOT / "bench" / "tmp" / f"calls-{args.calls}-days-{args.days}"),
        memory_limit=args.memory_limit, export_runs=args.export_runs,
        all_orgs_runs=args.all_orgs_runs, naive_runs=args.naive_runs, keep=args.keep,
        resume=args.resume, raw_source=args.raw.resolve() if args.raw else None,
        name=args.name, notes=args.note, touched_build=not args.no_touched_build,
        increment_as_of=args.increment_as_of,
    )  # fmt: skip
    try:
        report = Bench(config).run()
    except StepFailed as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    print(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
