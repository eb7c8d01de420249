"""Measure what #13 costs: the marts' size on disk with and without the latency sketch, and a
warm request in UTC, in a time zone, and with compare=previous.

    python scripts/bench_calendar.py BASE_WAREHOUSE NEW_WAREHOUSE

BASE_WAREHOUSE is built without the sketch (the branch point), NEW_WAREHOUSE with it, from the
same raw directory. Build times come from each build's own report. Timings are noisy on a
shared machine: compare the ratios of one run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb

from callmetrics.exporter.api import Exporter, Request


def marts_bytes(path: str, scratch: Path) -> tuple[int, dict[str, int]]:
    """Bytes on disk of the marts: each table copied alone into a fresh database file
    (compressed as DuckDB stores it), and their total."""
    con = duckdb.connect()
    sizes = {}
    try:
        con.execute(f"attach '{path}' as source (read_only)")
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'source' "
            "and table_schema = 'marts' and table_type = 'BASE TABLE' order by 1").fetchall()]
        for table in tables:
            target = scratch / f"{table}.duckdb"
            target.unlink(missing_ok=True)
            con.execute(f"attach '{target}' as scratch")
            con.execute(f"create table scratch.{table} as select * from source.marts.{table}")
            con.execute("detach scratch")
            sizes[table] = target.stat().st_size
            target.unlink()
        return sum(sizes.values()), sizes
    finally:
        con.close()


def timed(actions: dict[str, Callable[[], object]], repeat: int = 25) -> dict[str, float]:
    """Median seconds of each action, run in turns (so load on the machine hits all alike)."""
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for action in actions.values():
        action()  # warm
    for _ in range(repeat):
        for name, action in actions.items():
            began = time.perf_counter()
            action()
            samples[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in samples.items()}


def requests(path: str) -> dict[str, float]:
    with Exporter(path) as exporter:
        con = exporter._con  # noqa: SLF001 - a benchmark reads the span of the data
        org, last = con.execute(
            "select organization_id, max(bucket_start) from marts.mart_metrics "
            "group by 1 order by count(*) desc limit 1").fetchone()
        end = last.date()
        start = end - timedelta(days=29)
        utc = Request.parse(start.isoformat(), end.isoformat())
        zoned = Request.parse(start.isoformat(), end.isoformat(), "America/New_York")
        compared = Request.parse(start.isoformat(), end.isoformat(), None, None, "previous")
        return timed({
            "utc": lambda: exporter.payload(utc, org),
            "tz": lambda: exporter.payload(zoned, org),
            "compare": lambda: exporter.payload(compared, org),
        })


def main() -> None:
    base, new = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as scratch:
        base_total, _ = marts_bytes(base, Path(scratch))
        new_total, new_sizes = marts_bytes(new, Path(scratch))
    print(f"marts on disk: base {base_total / 2**20:.1f} MiB, with sketch "
          f"{new_total / 2**20:.1f} MiB (+{100 * (new_total / base_total - 1):.1f}%); "
          f"mart_latency_sketch {new_sizes.get('mart_latency_sketch', 0) / 2**20:.1f} MiB, "
          f"fct_calls {new_sizes.get('fct_calls', 0) / 2**20:.1f} MiB")
    timings = requests(new)
    print("warm request, one organization x 30 days (median of 25, in turns): "
          + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in timings.items())
          + f"; tz/utc {timings['tz'] / timings['utc']:.2f}x, "
          f"compare/utc {timings['compare'] / timings['utc']:.2f}x")


if __name__ == "__main__":
    main()
