"""`generate_raw`: a whole synthetic raw directory (first extract plus weekly history)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from callmetrics.errors import UserError
from callmetrics.generation.engine import Progress, connect, copy_to_parquet, sql_list, sql_str
from callmetrics.generation.model import (
    CALL_COLUMNS,
    EVENT_DIRT_KINDS,
    EVENT_DIRT_VARIANTS,
    EVENT_TYPES,
    CallParams,
    build_call_rows,
    build_calls,
    build_event_pool,
    build_samplers,
    event_plan_sql,
    event_rows_sql,
    event_select,
)
from callmetrics.generation.summary import GenerationSummary
from callmetrics.generation.vocab import (
    AGENT_FIRST_NAMES,
    AGENT_ROLES,
    AGENT_STATUSES,
    ORG_NAMES,
    RESELLER_NAMES,
    TIMEZONES,
    UNKNOWN_AGENT_STATUS,
)
from callmetrics.settings import RAW_TABLES

SUMMARY_FILE = "_generation_summary.json"
DEFAULT_END = date(2025, 3, 1)
MAX_DIRT_RATE = 0.05


@dataclass(frozen=True)
class BaseParams:
    calls: int
    days: int
    orgs: int
    resellers: int
    seed: int
    end_date: date
    dirt_rate: float

    def validate(self) -> None:
        if self.calls <= 0:
            raise UserError(f"--calls must be a positive number, got {self.calls}")
        if self.calls > 50_000_000:
            raise UserError(f"--calls {self.calls} is too many: at most 50000000")
        if not 1 <= self.days <= 3660:
            raise UserError(f"--days must be from 1 to 3660, got {self.days}")
        if not 1 <= self.orgs <= 100_000:
            raise UserError(f"--orgs must be from 1 to 100000, got {self.orgs}")
        if not 0 <= self.resellers <= 100_000:
            raise UserError(f"--resellers must be from 0 to 100000, got {self.resellers}")
        if not 0 <= self.seed < 2**62:
            raise UserError(f"--seed must be a non-negative integer below 2**62, got {self.seed}")
        if not 0.0 <= self.dirt_rate <= MAX_DIRT_RATE:
            raise UserError(
                f"--dirt-rate must be from 0 to {MAX_DIRT_RATE}, got {self.dirt_rate}"
            )


def existing_tables(out_dir: Path) -> list[str]:
    return [t for t in RAW_TABLES if (out_dir / t).exists()]


def clear_raw_dir(out_dir: Path) -> None:
    """Remove the table folders and the summary written by an earlier run (for --force)."""
    for table in RAW_TABLES:
        if (out_dir / table).exists():
            shutil.rmtree(out_dir / table)
    for stale in out_dir.glob("_*.json"):
        stale.unlink()


def _build_dimensions(con: duckdb.DuckDBPyConnection, p: BaseParams, dirt: bool) -> None:
    k = p.seed
    end = sql_str(p.end_date.isoformat())
    end_us = f"epoch_us(timestamp {end})"
    n_res = len(RESELLER_NAMES)
    n_org = len(ORG_NAMES)
    history_us = f"{p.days} * 86400000000"
    con.execute(
        f"""
        create or replace table out_resellers as
        select
            r as idx,
            uid({k}, r, 300) as id,
            {sql_list(RESELLER_NAMES)}[r % {n_res} + 1]
                || case when r >= {n_res} then ' ' || (r // {n_res} + 1)::varchar else '' end
                as name,
            ts_of({end_us} - {history_us} - (300 + floor(u01({k}, r, 301) * 500))::bigint
                * 86400000000 - floor(u01({k}, r, 302) * 86400000000)::bigint) as created_at
        from range({p.resellers}) t(r)
        order by r
        """
    )
    reseller_of = (
        "null" if p.resellers == 0 else f"uid({k}, (o + {k % 1000}) % {p.resellers}, 300)"
    )
    # With dirt, cases the spec allows: the second organization names a reseller that the
    # resellers extract lacks (known only through the organization), and the last organization
    # is missing from the organizations extract (known only through its calls).
    named_only_by_org = "true" if dirt and p.resellers > 0 and p.orgs >= 2 else "false"
    only_in_calls = "true" if dirt and p.orgs >= 3 else "false"
    con.execute(
        f"""
        create or replace table out_orgs as
        select
            o as org_idx,
            uid({k}, o, 310) as id,
            {sql_list(ORG_NAMES)}[o % {n_org} + 1]
                || case when o >= {n_org} then ' ' || (o // {n_org} + 1)::varchar else '' end
                as name,
            case when o % 4 = 3 then null
                 when {named_only_by_org} and o = 1 then uid({k}, {p.resellers}, 300)
                 else {reseller_of} end as reseller_id,
            {sql_list(TIMEZONES)}[o % {len(TIMEZONES)} + 1] as timezone,
            ts_of({end_us} - {history_us} - (30 + floor(u01({k}, o, 311) * 600))::bigint
                * 86400000000 - floor(u01({k}, o, 312) * 86400000000)::bigint) as created_at,
            {only_in_calls} and o = {p.orgs - 1} as only_in_calls
        from range({p.orgs}) t(o)
        order by o
        """
    )
    statuses = " union all ".join(
        f"select {sql_str(s)} as status, {w} as weight" for s, w in AGENT_STATUSES
    )
    con.execute(
        f"""
        create or replace table status_cum as
        select status,
            sum(weight) over (order by weight desc, status rows unbounded preceding)
                / sum(weight) over () as hi
        from ({statuses})
        """
    )
    n_first = len(AGENT_FIRST_NAMES)
    n_roles = len(AGENT_ROLES)
    con.execute(
        f"""
        create or replace table all_agents as
        with per_org as (
            select org_idx, id as org_id, created_at as org_created,
                2 + floor(id_u(id, 30) * 6)::integer
                  + floor(4 * org_weight(id) / max(org_weight(id)) over ())::integer as n_agents
            from out_orgs
        ),
        expanded as (
            select org_idx, org_id, org_created, unnest(range(n_agents)) as j from per_org
        ),
        drawn as (
            select *,
                org_idx * 1000 + j as aseq,
                u01({k}, org_idx * 1000 + j, 322) as u_status
            from expanded
        )
        select
            aseq,
            org_idx,
            uid({k}, aseq, 320) as id,
            org_id as organization_id,
            {sql_list(AGENT_FIRST_NAMES)}[(h64({k}, aseq, 321) % {n_first})::integer + 1]
                || case when u01({k}, aseq, 323) < 0.6 then ' - ' || {sql_list(AGENT_ROLES)}[
                    (h64({k}, aseq, 324) % {n_roles})::integer + 1] else '' end as name,
            case when j = 0 then 'active'
                 else coalesce((select min_by(status, hi) from status_cum where hi > u_status),
                               'active') end
                as status_canon,
            u01({k}, aseq, 325) as u_var,
            h64({k}, aseq, 326) as pick,
            ts_of(epoch_us(org_created) + floor(u01({k}, aseq, 327) * 20 * 86400000000)::bigint)
                as created_at
        from drawn
        order by aseq
        """
    )
    n_agents = con.execute("select count(*) from all_agents").fetchone()[0]
    n_special = max(1, round(n_agents * p.dirt_rate)) if dirt else 0
    # the agents with the smallest `pick` among non-first active agents are hard-deleted,
    # the next ones carry an unknown status
    con.execute(
        f"""
        create or replace table agent_flags as
        select id,
            rank_in <= {n_special} as is_deleted,
            rank_in > {n_special} and rank_in <= {2 * n_special} as has_unknown_status
        from (
            select id, row_number() over (order by pick, id) as rank_in
            from all_agents
            where status_canon = 'active' and aseq % 1000 <> 0
        )
        """
    )
    con.execute(
        f"""
        create or replace table out_agents as
        select
            a.aseq, a.org_idx, a.id, a.organization_id, a.name, a.status_canon,
            coalesce(f.is_deleted, false) as is_deleted,
            coalesce(f.has_unknown_status, false) as has_unknown_status,
            case when f.has_unknown_status then vary_text({sql_str(UNKNOWN_AGENT_STATUS)}, a.u_var)
                 else vary_text(a.status_canon, a.u_var) end as status,
            a.created_at,
            ts_of(least(epoch_us(a.created_at)
                + floor(u01({k}, a.aseq, 328) * 400 * 86400000000)::bigint,
                {end_us} - floor(u01({k}, a.aseq, 329) * 86400000000)::bigint)) as updated_at
        from all_agents a
        left join agent_flags f on f.id = a.id
        order by a.aseq
        """
    )
    con.execute(
        """
        create or replace table g_orgs as
        select org_idx, id as org_id, timezone as tz, org_profile(id) as profile,
            org_weight(id) as weight
        from out_orgs
        """
    )
    con.execute(
        """
        create or replace table g_agents as
        select id as agent_id, org_idx, agent_weight(id) as weight, agent_skill(id) as skill,
            agent_pace(id) as pace
        from out_agents
        where status_canon <> 'pending'
        """
    )


def write_events(
    con: duckdb.DuckDBPyConnection,
    cp: CallParams,
    table_dir: Path,
    *,
    weekly: bool,
    folder: str,
    stem: str,
    progress: Progress,
) -> tuple[int, int]:
    """Write every event of ``calls_t`` and then their redelivered copies; return (rows, files).

    Weekly: one file per ``ev_part`` folder (the week the call started); else all in `folder`.
    The redelivered copies always go to `folder`, in a file of their own.
    """
    rows = files = 0
    if weekly:
        parts = [
            r[0] for r in con.execute("select distinct ev_part from calls_t order by 1").fetchall()
        ]
        for part in parts:
            n = copy_to_parquet(
                con,
                event_select(cp, event_rows_sql(cp, part, False)),
                table_dir / part / f"{stem}-0.parquet",
            )
            rows += n
            files += 1
            progress.say(f"telemetry_events {part}: {n:,} rows")
    else:
        rows += copy_to_parquet(
            con,
            event_select(cp, event_rows_sql(cp, None, False)),
            table_dir / folder / f"{stem}-0.parquet",
        )
        files += 1
    if con.execute("select sum(n_redeliver) from calls_t").fetchone()[0]:
        rows += copy_to_parquet(
            con,
            event_select(cp, event_rows_sql(cp, None, True)),
            table_dir / folder / f"{stem}-redelivered-0.parquet",
        )
        files += 1
    return rows, files


def write_call_rows(
    con: duckdb.DuckDBPyConnection, table_dir: Path, *, weekly: bool, folder: str, stem: str
) -> tuple[int, int]:
    """Write ``call_rows``: per weekly part (else all in `folder`), the duplicate copies that
    belong to another file in `<stem>-redelivered`; return (rows, files)."""
    rows = files = 0
    main_parts = (
        [r[0] for r in con.execute(
            "select distinct part from call_rows where file_stem = 'part' order by 1"
        ).fetchall()]
        if weekly
        else [None]
    )
    targets = [(part, "part") for part in main_parts]
    if con.execute("select count(*) from call_rows where file_stem <> 'part'").fetchone()[0]:
        targets.append((None, "redelivered"))
    for part, file_stem in targets:
        where = f"file_stem = {sql_str(file_stem)}"
        if part is not None:
            where += f" and part = {sql_str(part)}"
        name = stem if file_stem == "part" else f"{stem}-redelivered"
        rows += copy_to_parquet(
            con,
            f"select {CALL_COLUMNS} from call_rows where {where}",
            table_dir / (part or folder) / f"{name}-0.parquet",
        )
        files += 1
    return rows, files


def call_dirt_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Dirt injected into the calls table, counted from the generated rows."""
    row = con.execute(
        """
        select
            count(*) filter (where is_dup_copy),
            count(*) filter (where is_dup_copy and file_stem <> 'part'),
            count(*) filter (where is_null_id_row),
            count(*) filter (where is_latest and not is_null_id_row and not is_dup_copy
                and dirt = 'null_organization_id'),
            count(*) filter (where is_latest and not is_null_id_row and not is_dup_copy
                and dirt = 'null_started_at'),
            count(*) filter (where is_latest and not is_null_id_row and not is_dup_copy
                and dirt = 'ended_before_started'),
            count(*) filter (where is_latest and not is_null_id_row and not is_dup_copy
                and dirt in ('null_organization_id', 'null_started_at', 'ended_before_started')
                and n_versions > 1)
        from call_rows
        """
    ).fetchone()
    per_call = dict(
        con.execute(
            "select dirt, count(*) from calls_t group by dirt"
        ).fetchall()
    )
    return {
        "duplicate_call_version_rows": row[0],
        "duplicate_call_version_rows_in_other_file": row[1],
        "null_id_rows": row[2],
        "null_organization_id_calls": row[3],
        "null_started_at_calls": row[4],
        "ended_before_started_calls": row[5],
        "latest_invalid_older_valid_calls": row[6],
        "in_progress_calls": per_call.get("in_progress", 0),
        "unmapped_outcome_calls": per_call.get("unmapped_outcome", 0),
        "null_outcome_calls": per_call.get("null_outcome", 0),
        "transferred_at_null_calls": per_call.get("transferred_at_null", 0),
        "transferred_at_outside_calls": per_call.get("transferred_at_outside", 0),
        "null_agent_id_calls": per_call.get("null_agent_id", 0),
        "calls_never_arriving": per_call.get("call_never_arrives", 0),
    }


def event_dirt_counts(con: duckdb.DuckDBPyConnection, cp: CallParams) -> tuple[dict, dict]:
    """Dirt and variations injected into telemetry (rows written, copies included)."""
    rows_all = (
        f"({event_rows_sql(cp, None, False)}) union all ({event_rows_sql(cp, None, True)})"
    )
    plan = event_plan_sql(cp, rows_all)
    result = con.execute(
        f"""
        select t, e, s, is_copy, never_arrives, type_case_varied, occurred_null,
            status_case_varied, count(*)
        from ({plan})
        group by all
        order by all
        """
    ).fetchall()
    dirt: dict[str, int] = {}
    var: dict[str, int] = {}

    def add(d: dict[str, int], key: str, n: int) -> None:
        d[key] = d.get(key, 0) + n

    for t, e, s, is_copy, never, case_var, occ_null, status_var, n in result:
        kind = EVENT_DIRT_KINDS[e - 1] if e else None
        if is_copy:
            add(dirt, "duplicate_event_rows", n)
        if never and kind != "null_call_id":
            add(dirt, "events_of_calls_never_arriving", n)
        if kind == "null_call_id":
            add(dirt, "events_null_call_id", n)
        elif kind == "unknown_event_type":
            add(dirt, "events_unknown_type", n)
        elif kind == "malformed_json":
            add(dirt, "events_malformed_json", n)
        elif kind is not None:
            etype = EVENT_TYPES[t]
            add(dirt, f"events_{kind}.{etype}.{EVENT_DIRT_VARIANTS[(etype, kind)][s]}", n)
        if case_var:
            add(var, "event_type_case_varied", n)
        if occ_null:
            add(var, "event_occurred_at_null", n)
        if status_var:
            add(var, "tool_status_case_varied", n)
    return dirt, var


def generate_raw(
    out_dir: Path,
    *,
    calls: int,
    days: int = 60,
    orgs: int = 12,
    resellers: int = 3,
    seed: int = 42,
    end_date: date = DEFAULT_END,
    dirt_rate: float = 0.01,
    progress: bool = False,
    force: bool = False,
) -> GenerationSummary:
    """Write a synthetic raw directory (layout of shared/spec/raw-sources.md) into `out_dir`."""
    params = BaseParams(calls, days, orgs, resellers, seed, end_date, dirt_rate)
    params.validate()
    out_dir = Path(out_dir)
    found = existing_tables(out_dir)
    if found and not force:
        raise UserError(
            f"{out_dir} already holds raw tables ({', '.join(found)}); "
            "choose an empty directory or pass --force to replace them"
        )
    prog = Progress("generate", quiet=not progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_raw_dir(out_dir)
    con, spill = connect()
    try:
        summary = _generate(con, out_dir, params, prog)
    finally:
        con.close()
        spill.cleanup()
    summary.seconds = round(prog.elapsed, 2)
    summary.write(out_dir / SUMMARY_FILE)
    prog.say(f"done: {summary.rows['calls']:,} call rows, "
             f"{summary.rows['telemetry_events']:,} events in {summary.seconds:.1f}s")
    return summary


def _generate(
    con: duckdb.DuckDBPyConnection, out_dir: Path, p: BaseParams, prog: Progress
) -> GenerationSummary:
    extract_date = p.end_date + timedelta(days=1)
    folder = f"extract={extract_date.isoformat()}"
    cp = CallParams(
        key=p.seed,
        n_calls=p.calls,
        days=p.days,
        end_date=p.end_date,
        dirt_rate=p.dirt_rate,
        forced_dirt=True,
        cap_date=extract_date,
    )
    summary = GenerationSummary(
        kind="base",
        out_dir=str(out_dir),
        params={
            "calls": p.calls, "days": p.days, "orgs": p.orgs, "resellers": p.resellers,
            "seed": p.seed, "end_date": p.end_date.isoformat(), "dirt_rate": p.dirt_rate,
        },
    )
    with prog.step("organizations, resellers, agents"):
        _build_dimensions(con, p, dirt=p.dirt_rate > 0)
        summary.rows["resellers"] = copy_to_parquet(
            con, "select id, name, created_at from out_resellers order by idx",
            out_dir / "resellers" / folder / "part-0.parquet",
        )
        summary.rows["organizations"] = copy_to_parquet(
            con,
            "select id, name, reseller_id, timezone, created_at from out_orgs "
            "where not only_in_calls order by org_idx",
            out_dir / "organizations" / folder / "part-0.parquet",
        )
        summary.rows["agents"] = copy_to_parquet(
            con,
            "select id, organization_id, name, status, created_at, updated_at "
            "from out_agents where not is_deleted order by aseq",
            out_dir / "agents" / folder / "part-0.parquet",
        )
        summary.files.update(resellers=1, organizations=1, agents=1)
    with prog.step(f"calls: drawing {p.calls:,} calls"):
        build_samplers(con, cp)
        build_calls(con, cp)
        if p.dirt_rate > 0:
            _lend_agent(con)
        build_call_rows(con, cp)
        build_event_pool(con, cp)
    with prog.step("calls: writing versions"):
        summary.rows["calls"], summary.files["calls"] = write_call_rows(
            con, out_dir / "calls", weekly=True, folder=folder, stem="part"
        )
    with prog.step("telemetry_events: writing"):
        ev_rows, ev_files = write_events(
            con, cp, out_dir / "telemetry_events", weekly=True, folder=folder, stem="part",
            progress=prog,
        )
        summary.rows["telemetry_events"], summary.files["telemetry_events"] = ev_rows, ev_files
        expected = con.execute("select sum(n_ev + n_dup_ev + n_redeliver) from calls_t").fetchone()
        if ev_rows != expected[0]:
            raise RuntimeError(f"wrote {ev_rows} events, expected {expected[0]}")
    with prog.step("counting injected dirt"):
        summary.calls = _call_facts(con)
        summary.dirt = call_dirt_counts(con)
        agent_dirt, agent_var = _agent_dirt(con)
        summary.dirt.update(agent_dirt)
        ev_dirt, ev_var = event_dirt_counts(con, cp)
        summary.dirt.update(ev_dirt)
        summary.variations = _call_variations(con) | agent_var | ev_var
    return summary


def _lend_agent(con: duckdb.DuckDBPyConnection) -> None:
    """An agent takes calls in two organizations (the spec allows it): one in twenty calls of
    the second organization that had an agent go to the first organization's first agent."""
    con.execute(
        """
        update calls_t set agent_id = (
            select min(agent_id) from g_agents where org_idx = (select min(org_idx) from g_orgs)
        )
        where agent_id is not null
            and org_id = (select org_id from g_orgs order by org_idx limit 1 offset 1)
            and hash(call_id) % 20 = 0
        """
    )


def _call_facts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """
        select count(*),
            count(*) filter (where dirt <> 'call_never_arrives'),
            sum(n_ev + n_dup_ev + n_redeliver)
        from calls_t
        """
    ).fetchone()
    return {"drawn": row[0], "arrived": row[1], "event_rows": int(row[2] or 0)}


def _agent_dirt(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict[str, int]]:
    row = con.execute(
        """
        select
            (select count(*) from out_agents where is_deleted),
            (select count(*) from calls_t c join out_agents a on a.id = c.agent_id
             where a.is_deleted and c.dirt <> 'call_never_arrives'),
            (select count(*) from out_agents where has_unknown_status and not is_deleted),
            (select count(*) from out_agents where status <> status_canon
             and not has_unknown_status and not is_deleted)
        """
    ).fetchone()
    return {
        "hard_deleted_agents": row[0],
        "calls_of_hard_deleted_agents": row[1],
        "agents_unknown_status": row[2],
    }, {"agents_status_case_or_space_varied": row[3]}


def _call_variations(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    row = con.execute(
        """
        select
            count(*) filter (where outcome_raw <> base_outcome
                and dirt not in ('unmapped_outcome', 'null_outcome')),
            count(*) filter (where trim(sentiment_raw, ' ' || chr(9) || chr(10) || chr(13)) = ''),
            count(*) filter (where reason_raw is not null
                and reason_raw <> lower(reason_raw)
                or reason_raw <> trim(reason_raw) or reason_raw like '%  %')
        from calls_t
        where dirt <> 'call_never_arrives'
        """
    ).fetchone()
    return {
        "outcome_case_or_space_varied_calls": row[0],
        "blank_sentiment_calls": row[1],
        "escalation_reason_case_or_space_varied_calls": row[2],
    }
