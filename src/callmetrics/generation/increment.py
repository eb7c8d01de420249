"""`generate_increment`: the next nightly extract, written into an existing raw directory.

It adds, as new files in `<table>/extract=<day + 1>/` (the extract taken the next morning):
- one new day of calls with their telemetry (`inc-*.parquet`);
- late versions of a share of calls weeks old, and completions of calls left in progress
  (`calls/.../late-0.parquet`), each with an `updated_at` later than anything before;
- late telemetry events of older calls (`late-0.parquet`) and redelivered copies of events
  already delivered (`redelivered-0.parquet`);
- a new agents extract that replaces the old one (agents are current state): some agents
  renamed, some hard-deleted (absent);
- a new organizations extract that replaces the old one, with `move_orgs` organizations moved
  to another reseller (reseller is current state: all their history moves with them).
  Resellers are kept as they are.

The late work (late versions, completions, late and redelivered telemetry) is drawn from the
whole history, so it grows with it. `late_scale` below 1 draws each kind at that fraction of its
rate: a larger history then gets the late work of a smaller one (the benchmark's equal-arrival
increment compares the nightly cost of two history sizes on the same arrival).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb

from callmetrics.errors import UserError
from callmetrics.generation.base import MAX_DIRT_RATE, write_call_rows, write_events
from callmetrics.generation.engine import Progress, connect, copy_to_parquet, sql_list, sql_str
from callmetrics.generation.model import (
    CALL_COLUMNS,
    EPOCH,
    CallParams,
    build_call_rows,
    build_calls,
    build_event_pool,
    build_samplers,
    event_select,
)
from callmetrics.generation.summary import GenerationSummary
from callmetrics.generation.vocab import ESCALATION_REASONS, RENAME_SUFFIXES
from callmetrics.settings import RAW_TABLES

LATE_CALL_IDX_BASE = 100_000_000
DAY_US = 86_400_000_000


def _glob(raw_dir: Path, table: str) -> str:
    return sql_str(str(raw_dir / table / "**" / "*.parquet"))


def extract_folder(day: date) -> str:
    """The folder of the extract taken the morning after `day` (as the base run names its own)."""
    return f"extract={(day + timedelta(days=1)).isoformat()}"


def _validate(
    raw_dir: Path, day: date, calls: int, late_share: float, rename: int, delete: int, dirt: float,
    move: int = 0, late_scale: float = 1.0,
) -> None:
    missing = [t for t in RAW_TABLES if not any((raw_dir / t).rglob("*.parquet"))]
    if missing:
        raise UserError(
            f"{raw_dir} is not a raw directory (no files for {', '.join(missing)}); "
            "run `callmetrics generate` first"
        )
    if calls < 0:
        raise UserError(f"calls must be 0 or more, got {calls}")
    if not 0.0 <= late_share <= 1.0:
        raise UserError(f"late_share must be from 0 to 1, got {late_share}")
    if not 0.0 < late_scale <= 1.0:
        raise UserError(f"late_scale must be above 0 and at most 1, got {late_scale}")
    if rename < 0 or delete < 0 or move < 0:
        raise UserError("rename_agents, delete_agents and move_orgs must be 0 or more")
    if not 0.0 <= dirt <= MAX_DIRT_RATE:
        raise UserError(f"dirt_rate must be from 0 to {MAX_DIRT_RATE}, got {dirt}")
    done = raw_dir / "calls" / extract_folder(day) / "inc-0.parquet"
    if done.exists():
        raise UserError(f"the increment for {day.isoformat()} is already in {raw_dir}")


def generate_increment(
    raw_dir: Path,
    *,
    day: date,
    seed: int,
    calls: int,
    late_share: float = 0.02,
    rename_agents: int = 1,
    delete_agents: int = 1,
    dirt_rate: float = 0.01,
    progress: bool = False,
    move_orgs: int = 0,
    late_scale: float = 1.0,
) -> GenerationSummary:
    """Write the extract of `day` into `raw_dir` (see the module doc); return its summary."""
    raw_dir = Path(raw_dir)
    _validate(raw_dir, day, calls, late_share, rename_agents, delete_agents, dirt_rate,
              move_orgs, late_scale)
    prog = Progress("increment", quiet=not progress)
    key = (seed * 1_000_003 + (day - EPOCH).days * 7919 + 17) % (2**62)
    summary = GenerationSummary(
        kind="increment",
        out_dir=str(raw_dir),
        params={
            "day": day.isoformat(), "seed": seed, "calls": calls, "late_share": late_share,
            "rename_agents": rename_agents, "delete_agents": delete_agents,
            "dirt_rate": dirt_rate, "move_orgs": move_orgs, "late_scale": late_scale,
        },
    )
    con, spill = connect()
    try:
        if move_orgs:
            with prog.step(f"organizations: {move_orgs} moved to another reseller"):
                _move_orgs(con, raw_dir, day, key, move_orgs, summary)
        _increment(con, raw_dir, day, key, calls, late_share, rename_agents, delete_agents,
                   dirt_rate, summary, prog, late_scale)
    finally:
        con.close()
        spill.cleanup()
    summary.seconds = round(prog.elapsed, 2)
    summary.write(raw_dir / f"_increment_{day.isoformat()}.json")
    prog.say(f"done in {summary.seconds:.1f}s")
    return summary


def _increment(
    con: duckdb.DuckDBPyConnection,
    raw: Path,
    day: date,
    key: int,
    calls: int,
    late_share: float,
    rename: int,
    delete: int,
    dirt: float,
    summary: GenerationSummary,
    prog: Progress,
    late_scale: float = 1.0,
) -> None:
    folder = extract_folder(day)
    with prog.step("reading the current extract"):
        _read_current(con, raw, key)
    # one instant after everything already delivered: late versions go after it
    prior_max_us = con.execute("select max_updated_us from prior").fetchone()[0]
    agents_us = max(prior_max_us, _day_us(day + timedelta(days=1)) + DAY_US // 2)

    with prog.step(f"agents: {delete} deleted, {rename} renamed"):
        _replace_agents(con, raw, day, key, rename, delete, agents_us, summary)

    cp = CallParams(
        key=key, n_calls=max(calls, 1), days=1, end_date=day, dirt_rate=dirt,
        forced_dirt=False, cap_date=day + timedelta(days=1),
    )
    build_event_pool(con, cp)
    new_max_us = prior_max_us
    if calls > 0:
        with prog.step(f"calls: {calls:,} new calls of {day.isoformat()}"):
            _load_call_dims(con)
            build_samplers(con, cp)
            build_calls(con, cp)
            build_call_rows(con, cp)
            rows, files = write_call_rows(
                con, raw / "calls", weekly=False, folder=folder, stem="inc"
            )
            summary.rows["calls"] = rows
            summary.files["calls"] = files
            ev_rows, ev_files = write_events(
                con, cp, raw / "telemetry_events", weekly=False, folder=folder, stem="inc",
                progress=prog,
            )
            summary.rows["telemetry_events"] = ev_rows
            summary.files["telemetry_events"] = ev_files
            summary.changes["new_calls"] = con.execute(
                "select count(*) from calls_t where dirt <> 'call_never_arrives'"
            ).fetchone()[0]
            new_max_us = max(
                new_max_us, con.execute("select max(updated_us) from call_rows").fetchone()[0]
            )

    late_start_us = max(new_max_us, agents_us) + 60_000_000
    with prog.step("late versions of older calls"):
        _late_versions(con, raw, day, key, late_share * late_scale, late_start_us, summary,
                       _kept(key, "id", 606, late_scale))  # fmt: skip
    with prog.step("late and redelivered telemetry"):
        _late_events(con, raw, day, key, dirt, summary, _kept(key, "event_id", 701, late_scale))


def _kept(key: int, column: str, salt: int, scale: float) -> str:
    """A SQL condition that keeps a `scale` share of the rows (by a hash of `column`); every
    row at scale 1, so a full-scale increment is the same whatever the knob."""
    if scale >= 1.0:
        return "true"
    return f"h64({key}, {column}, {salt}) % 1000000 < {round(scale * 1_000_000)}"


def _day_us(d: date) -> int:
    return (d - EPOCH).days * DAY_US


def _read_current(con: duckdb.DuckDBPyConnection, raw: Path, key: int) -> None:
    con.execute(
        f"""
        create or replace table cur_orgs as
        select id, timezone from read_parquet({_glob(raw, 'organizations')}, union_by_name = true,
            hive_partitioning = false)
        """
    )
    con.execute(
        f"""
        create or replace table cur_agents as
        select id, organization_id, name, status, created_at, updated_at
        from read_parquet({_glob(raw, 'agents')}, union_by_name = true,
            hive_partitioning = false)
        """
    )
    con.execute(
        f"""
        create or replace table prior as
        select max(epoch_us(updated_at)) as max_updated_us
        from read_parquet({_glob(raw, 'calls')}, union_by_name = true,
            hive_partitioning = false)
        """
    )
    con.execute(
        f"""
        create or replace table old_latest as
        select id, organization_id, agent_id, started_at, ended_at, outcome, transferred_at,
            sentiment, user_corrections, escalation_reason, updated_at
        from read_parquet({_glob(raw, 'calls')}, union_by_name = true,
            hive_partitioning = false)
        where id is not null
        qualify row_number() over (partition by id order by updated_at desc) = 1
        """
    )


def _replace_agents(
    con: duckdb.DuckDBPyConnection,
    raw: Path,
    day: date,
    key: int,
    rename: int,
    delete: int,
    agents_us: int,
    summary: GenerationSummary,
) -> None:
    """Write the new agents extract and remove the old files (agents are current state)."""
    con.execute(
        f"""
        create or replace table agent_changes as
        with with_calls as (
            select a.id, row_number() over (order by h64({key}, a.id, 500), a.id) as rank_in
            from cur_agents a
            where a.id in (select agent_id from old_latest where agent_id is not null)
        )
        select id,
            case when rank_in <= {delete} then 'deleted'
                 when rank_in <= {delete + rename} then 'renamed' end as change
        from with_calls
        where rank_in <= {delete + rename}
        """
    )
    con.execute(
        f"""
        create or replace table new_agents as
        select
            a.id, a.organization_id,
            case when c.change = 'renamed'
                then trim(a.name) || ' (' || {sql_list(RENAME_SUFFIXES)}[
                    (h64({key}, a.id, 501) % {len(RENAME_SUFFIXES)})::integer + 1] || ')'
                else a.name end as name,
            a.status, a.created_at,
            case when c.change = 'renamed' then ts_of({agents_us}) else a.updated_at end
                as updated_at
        from cur_agents a
        left join agent_changes c on c.id = a.id
        where c.change is distinct from 'deleted'
        order by a.id
        """
    )
    old_files = sorted((raw / "agents").rglob("*.parquet"))
    tmp = raw / f".agents-{day.isoformat()}.tmp.parquet"
    summary.rows["agents"] = copy_to_parquet(con, "select * from new_agents order by id", tmp)
    for f in old_files:
        f.unlink()
    for d in sorted((p for p in (raw / "agents").rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    target = raw / "agents" / extract_folder(day) / "part-0.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(target)
    summary.files["agents"] = 1
    changes = con.execute(
        "select c.change, c.id, a.name, n.name from agent_changes c "
        "join cur_agents a on a.id = c.id left join new_agents n on n.id = c.id order by all"
    ).fetchall()
    summary.changes["deleted_agents"] = sum(1 for c in changes if c[0] == "deleted")
    summary.changes["renamed_agents"] = sum(1 for c in changes if c[0] == "renamed")
    summary.details["deleted_agents"] = [c[1] for c in changes if c[0] == "deleted"]
    summary.details["renamed_agents"] = {
        c[1]: {"old": c[2], "new": c[3]} for c in changes if c[0] == "renamed"
    }


def _replace_extract(raw: Path, table: str, day: date, write: Callable[[Path], int]) -> int:
    """Replace a current-state table's files by one new extract written by `write`."""
    old_files = sorted((raw / table).rglob("*.parquet"))
    tmp = raw / f".{table}-{day.isoformat()}.tmp.parquet"
    rows = write(tmp)
    for f in old_files:
        f.unlink()
    for d in sorted((p for p in (raw / table).rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    target = raw / table / extract_folder(day) / "part-0.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(target)
    return rows


def _move_orgs(
    con: duckdb.DuckDBPyConnection,
    raw: Path,
    day: date,
    key: int,
    move: int,
    summary: GenerationSummary,
) -> None:
    """Write a new organizations extract in which `move` organizations that have a reseller
    belong to the next reseller of the resellers extract (by id, wrapping around)."""
    con.execute(
        f"""
        create or replace table org_moves as
        with resellers as (
            select id, row_number() over (order by id) as n, count(*) over () as total
            from read_parquet({_glob(raw, 'resellers')}, union_by_name = true,
                hive_partitioning = false)
            where id is not null
        ),
        orgs as (
            select o.id, o.reseller_id, r.n, r.total
            from read_parquet({_glob(raw, 'organizations')}, union_by_name = true,
                hive_partitioning = false) o
            join resellers r on r.id = o.reseller_id
            where r.total > 1
            order by h64({key}, o.id, 510), o.id
            limit {move}
        )
        select orgs.id, orgs.reseller_id as old_reseller_id, r.id as new_reseller_id
        from orgs join resellers r on r.n = orgs.n % orgs.total + 1
        """
    )
    select_sql = f"""
        select o.id, o.name, coalesce(m.new_reseller_id, o.reseller_id) as reseller_id,
            o.timezone, o.created_at
        from read_parquet({_glob(raw, 'organizations')}, union_by_name = true,
            hive_partitioning = false) o
        left join org_moves m on m.id = o.id
        order by o.id
    """
    summary.rows["organizations"] = _replace_extract(
        raw, "organizations", day, lambda path: copy_to_parquet(con, select_sql, path)
    )
    summary.files["organizations"] = 1
    moves = con.execute("select * from org_moves order by id").fetchall()
    summary.changes["moved_organizations"] = len(moves)
    summary.details["moved_organizations"] = {
        org: {"old": old, "new": new} for org, old, new in moves
    }


def _load_call_dims(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        create or replace table g_orgs as
        select row_number() over (order by id) - 1 as org_idx, id as org_id, timezone as tz,
            org_profile(id) as profile, org_weight(id) as weight
        from cur_orgs
        """
    )
    con.execute(
        """
        create or replace table g_agents as
        select a.id as agent_id, o.org_idx, agent_weight(a.id) as weight,
            agent_skill(a.id) as skill, agent_pace(a.id) as pace
        from new_agents a
        join g_orgs o on o.org_id = a.organization_id
        where lower(trim(a.status, ' ' || chr(9) || chr(10) || chr(13))) in
            ('active', 'inactive', 'cancelled')
        """
    )


def _late_versions(
    con: duckdb.DuckDBPyConnection,
    raw: Path,
    day: date,
    key: int,
    late_share: float,
    late_start_us: int,
    summary: GenerationSummary,
    kept_in_progress: str = "true",
) -> None:
    """Late versions of older ended calls, and completions of calls left in progress (those
    `kept_in_progress` keeps)."""
    weeks_ago = sql_str((day - timedelta(days=7)).isoformat())
    reasons = sql_list([r[0][0].upper() + r[0][1:] for r in ESCALATION_REASONS])
    n_reasons = len(ESCALATION_REASONS)
    con.execute(
        f"""
        create or replace table late_pick as
        with eligible as (
            select *, h64({key}, id, 600) as pick
            from old_latest
            where organization_id is not null and started_at is not null
                and ended_at is not null and ended_at >= started_at
                and started_at < timestamptz {weeks_ago}
        )
        select * exclude (pick), h64({key}, id, 601) as h
        from eligible
        order by pick, id
        limit (select round(count(*) * {late_share})::bigint from eligible)
        """
    )
    con.execute(
        f"""
        create or replace table late_rows as
        with kinds as (
            select *,
                case when u16(h, 0) < 0.3 then 'outcome'
                     when u16(h, 0) < 0.6 then 'sentiment'
                     when u16(h, 0) < 0.8 then 'user_corrections'
                     else 'escalation_reason' end as change,
                lower(trim(outcome, ' ' || chr(9) || chr(10) || chr(13))) as code
            from late_pick
        ),
        changed as (
            select id, organization_id, agent_id, started_at, ended_at,
                case when change <> 'outcome' then outcome
                     when code = 'resolved' then 'escalated' else 'resolved' end as outcome,
                case when change <> 'outcome' then transferred_at
                     when code = 'resolved' then ts_of(epoch_us(started_at)
                        + ((epoch_us(ended_at) - epoch_us(started_at)) * 0.6)::bigint)
                     else null end as transferred_at,
                case when change <> 'sentiment' then sentiment
                     when lower(trim(sentiment)) = 'positive' then 'negative'
                     else 'positive' end as sentiment,
                case when change <> 'user_corrections' then user_corrections
                     when coalesce(user_corrections, 0) = 0 then 2 else 0 end
                    as user_corrections,
                case when change = 'escalation_reason' or (change = 'outcome'
                        and code = 'resolved')
                     then {reasons}[((h >> 16) % {n_reasons})::integer + 1]
                     when change = 'outcome' then null
                     else escalation_reason end as escalation_reason,
                ts_of({late_start_us} + floor(u32(h, 32) * 6 * 3600000000)::bigint)
                    as updated_at,
                change
            from kinds
        ),
        in_progress as (
            select *, h64({key}, id, 602) as h
            from old_latest
            where ended_at is null and started_at is not null and organization_id is not null
                and h64({key}, id, 603) % 2 = 0 and {kept_in_progress}
        ),
        completed as (
            select id, organization_id, agent_id, started_at,
                ts_of(epoch_us(started_at) + 30000000 + floor(u16(h, 0) * 600000000)::bigint)
                    as ended_at,
                'resolved' as outcome, null::timestamptz as transferred_at,
                'positive' as sentiment, 0 as user_corrections, null as escalation_reason,
                ts_of({late_start_us} + floor(u32(h, 32) * 6 * 3600000000)::bigint)
                    as updated_at,
                'completed_in_progress' as change
            from in_progress
        )
        select * from changed
        union all
        select * from completed
        """
    )
    path = raw / "calls" / extract_folder(day) / "late-0.parquet"
    n = copy_to_parquet(con, f"select {CALL_COLUMNS} from late_rows order by id", path)
    summary.rows["calls"] = summary.rows.get("calls", 0) + n
    summary.files["calls"] = summary.files.get("calls", 0) + 1
    for change, count in con.execute(
        "select change, count(*) from late_rows group by 1 order by 1"
    ).fetchall():
        summary.changes[f"late_version_{change}"] = count


def _late_events(
    con: duckdb.DuckDBPyConnection,
    raw: Path,
    day: date,
    key: int,
    dirt: float,
    summary: GenerationSummary,
    kept_redelivered: str = "true",
) -> None:
    """New events of older calls (half of the late calls), and redelivered old events (those
    `kept_redelivered` keeps)."""
    folder = raw / "telemetry_events" / extract_folder(day)
    # copies of events delivered by earlier extracts only: this extract's own files (the new
    # day's events, already written) are left out, so every copy is of an old event
    older = sorted(
        p for p in (raw / "telemetry_events").rglob("*.parquet") if folder not in p.parents
    )
    redelivered_sql = f"""
        select event_id, call_id, event_type, occurred_at, payload
        from read_parquet({sql_list([str(p) for p in older])}, union_by_name = true,
            hive_partitioning = false)
        where h64({key}, event_id, 700) % 1000 < {1 if dirt > 0 else 0} and {kept_redelivered}
    """
    # read before writing late-0 and redelivered-0, so the copies are of older files
    con.execute(f"create or replace table redelivered as {redelivered_sql}")
    con.execute(
        f"""
        create or replace table late_ev_calls as
        select
            {LATE_CALL_IDX_BASE} + row_number() over (order by id) as call_idx,
            id as call_id, epoch_us(started_at) as started_us,
            epoch_us(ended_at) - epoch_us(started_at) as dur_us,
            1 as n_llm, 0 as n_stt_extra, 2 as n_tool, 4 as n_ev,
            agent_skill(coalesce(agent_id, id)) as skill, false as never_arrives,
            1 + (h64({key}, id, 604) % 3)::integer as n_late
        from late_rows
        where h64({key}, id, 605) % 2 = 0 and ended_at >= started_at
        """
    )
    rows_sql = """
        select call_idx, call_id, started_us, dur_us, n_llm, n_stt_extra, n_tool, n_ev,
            skill, never_arrives, false as is_copy, r + 1 as k_eff
        from (select *, unnest(range(n_late)) as r from late_ev_calls)
    """
    cp = CallParams(
        key=key, n_calls=1, days=1, end_date=day, dirt_rate=dirt, forced_dirt=False,
        cap_date=day,
    )
    n_late = copy_to_parquet(
        con, f"{event_select(cp, rows_sql)} order by call_id, event_id", folder / "late-0.parquet"
    )
    n_red = copy_to_parquet(
        con, "select * from redelivered order by event_id", folder / "redelivered-0.parquet"
    )
    summary.rows["telemetry_events"] = summary.rows.get("telemetry_events", 0) + n_late + n_red
    summary.files["telemetry_events"] = summary.files.get("telemetry_events", 0) + 2
    summary.changes["late_events_of_older_calls"] = n_late
    summary.changes["redelivered_old_events"] = n_red
