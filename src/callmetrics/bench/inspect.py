"""Facts about a raw directory that the benchmark's later steps need (not timed).

The date range of the calls, the busiest organization and reseller over the last 30 days
(the exporter is timed on the busiest, its worst case), and the raw row counts.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb


def _glob(raw_dir: Path, table: str) -> str:
    return str(raw_dir / table / "**" / "*.parquet").replace("'", "''")


def inspect_raw(raw_dir: Path, last_days: int = 30) -> dict[str, Any]:
    con = duckdb.connect(config={"threads": 2})
    con.execute("set TimeZone = 'UTC'")
    calls = f"read_parquet('{_glob(raw_dir, 'calls')}', union_by_name = true)"
    events = f"read_parquet('{_glob(raw_dir, 'telemetry_events')}', union_by_name = true)"
    orgs = f"read_parquet('{_glob(raw_dir, 'organizations')}', union_by_name = true)"
    row = con.execute(
        f"select count(*), count(distinct id), min(started_at)::date, max(started_at)::date "
        f"from {calls} where started_at is not null and organization_id is not null"
    ).fetchone()
    assert row is not None
    call_rows, distinct_calls, first_day, last_day = row
    if last_day is None:
        raise ValueError(f"raw directory {raw_dir} holds no call with a start")
    assert isinstance(first_day, date) and isinstance(last_day, date)
    window_start = last_day - timedelta(days=last_days - 1)
    busiest = con.execute(
        f"select c.organization_id, o.reseller_id, count(*) as n from {calls} as c "
        f"left join {orgs} as o on o.id = c.organization_id "
        f"where c.started_at::date between ? and ? "
        f"group by all order by n desc, c.organization_id",
        [window_start, last_day],
    ).fetchall()
    by_reseller: dict[str, int] = {}
    for _org, reseller, count in busiest:
        if reseller is not None:
            by_reseller[reseller] = by_reseller.get(reseller, 0) + count
    reseller = min(by_reseller, key=lambda r: (-by_reseller[r], r)) if by_reseller else None
    event_rows = con.execute(f"select count(*) from {events}").fetchone()
    org_count = con.execute(f"select count(distinct id) from {orgs}").fetchone()
    return {
        "first_day": first_day.isoformat(),
        "last_day": last_day.isoformat(),
        "window_start": window_start.isoformat(),
        "busiest_org": busiest[0][0] if busiest else None,
        "busiest_org_rows": busiest[0][2] if busiest else 0,
        "busiest_reseller": reseller,
        "raw_call_rows": call_rows,
        "distinct_call_ids": distinct_calls,
        "raw_event_rows": event_rows[0] if event_rows else 0,
        "organizations": org_count[0] if org_count else 0,
    }
