"""``callmetrics demo``: the main job on the embedded default, end to end.

Generates a demo raw directory when there is none, builds the warehouse (the nightly job),
writes every organization's and reseller's payload for the whole span of the data, and says
where everything is.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from callmetrics.errors import UserError
from callmetrics.settings import PROJECT_ROOT, Settings

EXPORTS_DIR = PROJECT_ROOT / "data" / "exports"


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def _data_span(warehouse: str) -> tuple[date, date]:
    """First and last UTC date with a counted call in the published warehouse."""
    with duckdb.connect(warehouse, read_only=True) as con:
        first, last = con.execute(
            "select min(started_at)::date, max(started_at)::date from marts.fct_calls"
        ).fetchone()
    if first is None:
        raise UserError(f"the warehouse {warehouse} holds no counted calls: nothing to export")
    return first, last


def run_demo(
    calls: int, out: str | None, parse: Callable[[list[str]], argparse.Namespace]
) -> int:
    """`parse`: the command line's parser (`callmetrics export-all` is run as parsed there)."""
    from callmetrics.exporter.commands import run_export_all
    from callmetrics.generate import write_raw, yesterday
    from callmetrics.generation.base import existing_tables
    from callmetrics.pipeline import run_build

    settings = Settings.from_env()
    started = time.perf_counter()
    if existing_tables(settings.raw_dir):
        _say(f"using the raw data already in {settings.raw_dir}")
    else:
        end = yesterday()
        _say(f"generating {calls:,} synthetic calls ending {end} into {settings.raw_dir}")
        write_raw(settings.raw_dir, calls=calls, end_date=end, progress=True)

    _say("building the warehouse (snapshot, models, tests)")
    status = run_build(full_refresh=False)
    if status != 0:
        return status

    first, last = _data_span(str(settings.warehouse))
    folder = (Path(out) if out else EXPORTS_DIR) / f"{first.isoformat()}_{last.isoformat()}"
    _say(f"exporting every organization and reseller for {first} .. {last}")
    span = ["--start", first.isoformat(), "--end", last.isoformat(), "--out", str(folder)]
    status = run_export_all(parse(["export-all", *span]))
    if status != 0:
        return status

    _say(f"done in {time.perf_counter() - started:.1f}s")
    _say(f"raw data:   {settings.raw_dir}")
    _say(f"warehouse:  {settings.warehouse}  (open it read-only: see README, 'Querying the marts')")
    _say(f"payloads:   {folder}  (manifest.json lists every file)")
    _say(
        "try: callmetrics export --start "
        f"{first.isoformat()} --end {last.isoformat()} --org <organization id>"
    )
    return 0
