"""A missed calls extract, re-sent days later (raw-sources.md: extracts do not arrive in
`updated_at` order).

`withhold_calls` takes part of the calls change log out of a raw directory before it is first
built, as if that extract had been missed; the telemetry of those calls stays delivered (it
arrives before its calls). `resend_withheld` writes it back later as a new file,
`calls/extract=<day + 1>/resent-0.parquet`, together with:

- copies of versions already delivered (a re-sent extract repeats rows);
- never-seen versions *older* than their call's current one (superseded on arrival: they
  change nothing).

Every row of the re-sent file has an `updated_at` at least `older_than_days` older than the
newest row already delivered, so a loader that reads calls by an `updated_at` window misses it.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from callmetrics.errors import UserError
from callmetrics.generation.engine import connect, copy_to_parquet, sql_str
from callmetrics.generation.increment import extract_folder
from callmetrics.generation.model import CALL_COLUMNS

WITHHELD_DIR = "_withheld"  # not a table folder: the warehouse never reads it
WITHHELD_FILE = "calls.parquet"
# A withheld latest version that moves its call: started, ended and transferred this much
# earlier (another 15-minute bucket), as a platform correction would.
MOVE = "interval 3 hours"


def _calls_glob(raw_dir: Path) -> str:
    return sql_str(str(raw_dir / "calls" / "**" / "*.parquet"))


def withhold_calls(
    raw_dir: Path, *, share: float, seed: int, older_than_days: int = 3
) -> dict[str, int]:
    """Take out of `raw_dir`'s calls files, into `<raw_dir>/_withheld/calls.parquet`:

    - every version of a `share` of the calls whose newest version is at least
      `older_than_days` older than the newest row (backfilled calls: new to the warehouse);
    - the newest version of as many calls that have an older version (a backfilled version
      that becomes the call's latest when it arrives).

    Returns the number of calls of each kind."""
    raw_dir = Path(raw_dir)
    if not 0 < share < 1:
        raise UserError(f"share must be between 0 and 1, got {share}")
    held = raw_dir / WITHHELD_DIR / WITHHELD_FILE
    if held.exists():
        raise UserError(f"{held} already exists: resend it first")
    files = sorted((raw_dir / "calls").rglob("*.parquet"))
    con, spill = connect()
    try:
        con.execute(
            f"""
            create table versions as
            select id, updated_at, count(*) over (partition by id) as id_rows,
                max(updated_at) over (partition by id) as newest,
                max(updated_at) over () as newest_row
            from read_parquet({_calls_glob(raw_dir)}, union_by_name = true,
                hive_partitioning = false)
            where id is not null and updated_at is not null
            """
        )
        con.execute(
            f"""
            create table picked as
            with calls as (
                select id, max(id_rows) as id_rows, count(distinct updated_at) as versions,
                    max(newest) as newest, hash({seed}, id) % 1000000 as pick
                from versions
                where newest < newest_row - interval '{older_than_days} days'
                group by id
            ),
            single as (
                select id, 'backfilled_call' as kind from calls
                where pick < {share} * 1000000 order by pick, id
            ),
            multi as (
                select id, 'backfilled_latest_version' as kind from calls
                where versions > 1 and pick >= {share} * 1000000
                order by pick, id
                limit (select count(*) from single)
            )
            select * from single union all select * from multi
            """
        )
        con.execute(
            """
            create table held_versions as
            select distinct v.id, v.updated_at, p.kind
            from versions v join picked p using (id)
            where p.kind = 'backfilled_call' or v.updated_at = v.newest
            """
        )
        held.parent.mkdir(parents=True, exist_ok=True)
        columns = ", ".join(f"r.{c.strip()}" for c in CALL_COLUMNS.split(","))
        copy_to_parquet(
            con,
            f"""
            select {columns}, h.kind
            from read_parquet({_calls_glob(raw_dir)}, union_by_name = true,
                hive_partitioning = false) r
            join held_versions h on h.id = r.id and h.updated_at = r.updated_at
            order by r.id, r.updated_at
            """,
            held,
        )
        for f in files:
            tmp = f.with_suffix(".tmp")
            copy_to_parquet(
                con,
                f"""
                select * from read_parquet({sql_str(str(f))}, hive_partitioning = false) r
                where not exists (
                    select 1 from held_versions h
                    where h.id = r.id and h.updated_at = r.updated_at
                )
                """,
                tmp,
            )
            tmp.replace(f)
        counts = dict(con.execute("select kind, count(*) from picked group by kind").fetchall())
    finally:
        con.close()
        spill.cleanup()
    return {k: int(counts.get(k, 0)) for k in ("backfilled_call", "backfilled_latest_version")}


def resend_withheld(
    raw_dir: Path, *, day: date, seed: int, copies: int = 20, older_versions: int = 20
) -> dict[str, int]:
    """Write the withheld rows back as `calls/extract=<day + 1>/resent-0.parquet` (see the
    module doc), with `copies` copies of delivered versions and `older_versions` never-seen
    versions older than their call's current one. Half of the withheld newest versions move
    their call 3 hours earlier. Returns the number of rows of each kind."""
    raw_dir = Path(raw_dir)
    held = raw_dir / WITHHELD_DIR / WITHHELD_FILE
    if not held.exists():
        raise UserError(f"{held} does not exist: nothing was withheld")
    target = raw_dir / "calls" / extract_folder(day) / "resent-0.parquet"
    cols = [c.strip() for c in CALL_COLUMNS.split(",")]
    con, spill = connect()
    try:
        con.execute(
            f"""
            create table delivered as
            select {CALL_COLUMNS}
            from read_parquet({_calls_glob(raw_dir)}, union_by_name = true,
                hive_partitioning = false)
            where id is not null and updated_at is not null
            """
        )
        con.execute(f"create table withheld as select * from read_parquet({sql_str(str(held))})")
        moved = (
            f"w.kind = 'backfilled_latest_version' and hash({seed}, w.id, 1) % 2 = 0"
        )
        shifted = {c: f"case when {moved} then w.{c} - {MOVE} else w.{c} end"
                   for c in ("started_at", "ended_at", "transferred_at")}
        withheld_cols = ", ".join(f"{shifted.get(c, 'w.' + c)} as {c}" for c in cols)
        con.execute(
            f"""
            create table resent as
            select {withheld_cols}, case when {moved} then 'backfilled_moved'
                else w.kind end as kind
            from withheld w
            union all
            (select {CALL_COLUMNS}, 'resent_copy' as kind from delivered
             where updated_at < (select max(updated_at) from delivered) - interval '3 days'
             order by hash({seed}, id, updated_at, 2) limit {copies})
            union all
            (select id, organization_id, agent_id, started_at - interval 1 day,
                ended_at - interval 1 day, 'abandoned', null, sentiment, user_corrections,
                null, updated_at - interval 1 hour, 'older_version' as kind
             from delivered
             where updated_at < (select max(updated_at) from delivered) - interval '3 days'
                and id not in (select id from withheld)
             qualify row_number() over (partition by id order by updated_at desc) = 1
             order by hash({seed}, id, 3) limit {older_versions})
            """
        )
        copy_to_parquet(con, f"select {CALL_COLUMNS} from resent order by id, updated_at",
                        target)
        counts = dict(con.execute("select kind, count(*) from resent group by kind").fetchall())
    finally:
        con.close()
        spill.cleanup()
    shutil.rmtree(held.parent)
    return {k: int(v) for k, v in counts.items()}
