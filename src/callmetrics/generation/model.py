"""The SQL that draws calls, their versions and their telemetry.

Inputs are two small tables the caller creates first:

- ``g_orgs(org_idx, org_id, tz, profile, weight)``: organizations that receive calls;
- ``g_agents(agent_id, org_idx, weight, skill, pace)``: agents that take calls.

``build_calls`` materialises ``calls_t`` (one row per call: its final truth, its dirt kind and
how many versions and events it has). ``build_call_rows`` expands it into ``call_rows`` (one
row per raw version). Events are never materialised: ``event_select`` streams them. No query
sorts: DuckDB keeps insertion order (``preserve_insertion_order``) and the joins keep the drawn
rows on their probe side (``engine.connect``), so ``calls_t`` and ``call_rows`` are in draw
order and every file's rows are the same on every run. One limit: ``event_select``'s lookup
join into ``ev_pool`` does not keep order once ``calls_t`` spans several row groups (more than
122,880 calls): then the rows of a telemetry file are the same on every run but their order
within the file may differ. Sorting them would cost about a fifth of the event writing time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from callmetrics.generation.engine import (
    AGENT_SLOTS,
    SLOTS_BIG,
    SLOTS_SMALL,
    build_slot_table,
    sql_list,
    sql_str,
)
from callmetrics.generation.vocab import (
    BAD_TOOL_STATUSES,
    ESCALATION_REASONS,
    HOUR_WEIGHTS,
    TOOL_NAMES,
    UNKNOWN_EVENT_TYPES,
    UNMAPPED_OUTCOMES,
    WEEKDAY_WEIGHTS,
)

# Exclusive per-call dirt kinds, each drawn at the dirt rate.
CALL_DIRT_KINDS = (
    "duplicate_version",
    "null_id_row",
    "null_organization_id",
    "null_started_at",
    "ended_before_started",
    "in_progress",
    "unmapped_outcome",
    "null_outcome",
    "transferred_at_null",
    "transferred_at_outside",
    "null_agent_id",
    "call_never_arrives",
)
# Exclusive per-event dirt kinds, each drawn at the dirt rate (duplicates are extra rows).
EVENT_DIRT_KINDS = (
    "null_call_id",
    "unknown_event_type",
    "malformed_json",
    "missing_field",
    "string_number",
    "boolean_value",
    "out_of_range",
)
EPOCH = date(1970, 1, 1)
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class CallParams:
    key: int  # stream key of the pseudo-random draws
    n_calls: int
    days: int
    end_date: date  # last local day of calls
    dirt_rate: float
    forced_dirt: bool  # give the first calls one of each dirt kind (so small runs hold all)
    cap_date: date  # files are labelled by weekly extract, never later than this day

    @property
    def cap_day(self) -> int:
        return (self.cap_date - EPOCH).days


def build_samplers(con: duckdb.DuckDBPyConnection, p: CallParams) -> None:
    """Slot tables for weighted draws: organization, day, hour, agent, escalation reason."""
    build_slot_table(
        con, "org_slots", "select org_idx, weight from g_orgs", [], "org_idx", SLOTS_BIG
    )
    day_rows = []
    for profile, weights in WEEKDAY_WEIGHTS.items():
        day_rows.append(
            f"select {sql_str(profile)} as profile, off as day_off, "
            f"{sql_list([str(w) for w in weights])}[isodow(date {sql_str(p.end_date.isoformat())}"
            f" - off::integer)]::double "
            f"* (1.0 + 0.25 * ({p.days - 1} - off) / {max(p.days - 1, 1)}) "
            f"* case when strftime(date {sql_str(p.end_date.isoformat())} - off::integer, '%m-%d')"
            f" in ('01-01', '12-25') then 0.3 else 1.0 end as weight "
            f"from range({p.days}) t(off)"
        )
    build_slot_table(
        con, "day_slots", " union all ".join(day_rows), ["profile"], "day_off", SLOTS_BIG
    )
    hour_rows = [
        f"select {sql_str(profile)} as profile, h as hour, "
        f"{sql_list([str(w) for w in weights])}[h + 1]::double as weight from range(24) t(h)"
        for profile, weights in HOUR_WEIGHTS.items()
    ]
    build_slot_table(
        con, "hour_slots", " union all ".join(hour_rows), ["profile"], "hour", SLOTS_SMALL
    )
    reasons = " union all ".join(
        f"select {sql_str(r)} as reason, {w} as weight" for r, w in ESCALATION_REASONS
    )
    build_slot_table(con, "reason_slots", reasons, [], "reason", SLOTS_SMALL)
    build_slot_table(
        con,
        "agent_slots",
        "select org_idx, agent_id, weight from g_agents",
        ["org_idx"],
        "agent_id",
        AGENT_SLOTS,
    )


def build_calls(con: duckdb.DuckDBPyConnection, p: CallParams) -> None:
    """Materialise ``calls_t``: one row per call, in call_idx order."""
    k = p.key
    d = p.dirt_rate
    nk = len(CALL_DIRT_KINDS)
    kinds = sql_list(CALL_DIRT_KINDS)
    forced = "true" if (p.forced_dirt and d > 0) else "false"
    end = sql_str(p.end_date.isoformat())
    con.execute(
        f"""
        create or replace table calls_t as
        with draws as (
            select
                i as call_idx,
                u01({k}, i, 1) as u_org, u01({k}, i, 2) as u_day, u01({k}, i, 3) as u_hour,
                u01({k}, i, 4) as u_sec, u01({k}, i, 5) as u_agent, u01({k}, i, 6) as u_out,
                u01({k}, i, 7) as u_out2, nrm({k}, i, 8) as z_dur, u01({k}, i, 9) as u_sent,
                u01({k}, i, 10) as u_corr, u01({k}, i, 11) as u_reason,
                u01({k}, i, 12) as u_reason_var, u01({k}, i, 13) as u_transfer,
                u01({k}, i, 14) as u_ver, u01({k}, i, 16) as u_var_out,
                u01({k}, i, 17) as u_var_sent, u01({k}, i, 18) as u_blank,
                u01({k}, i, 19) as u_turn, u01({k}, i, 20) as u_tool, u01({k}, i, 21) as u_stt,
                u01({k}, i, 22) as u_dup, u01({k}, i, 23) as u_analysed,
                u01({k}, i, 26) as u_reason_pick,
                case
                    when {forced} and i < {nk} then {kinds}[i + 1]
                    when u01({k}, i, 15) < {d * nk}
                        then {kinds}[floor(u01({k}, i, 15) / {d if d > 0 else 1})::integer + 1]
                    else 'clean'
                end as dirt
            from range({p.n_calls}) t(i)
        ),
        placed as (
            select
                dr.*, o.org_id, o.tz, o.profile, hs.hour as local_hour,
                epoch_us(timezone(coalesce(o.tz, 'UTC'),
                    (date {end} - ds.day_off::integer)::timestamp
                    + to_microseconds(hs.hour * 3600000000
                        + floor(dr.u_sec * 3600000000)::bigint))) as started_us,
                case when dr.dirt = 'null_agent_id' then null else a.agent_id end as agent_id,
                coalesce(a.skill, 0.55) as skill,
                coalesce(a.pace, 1.0) as pace,
                rs.reason as reason_canon
            from draws dr
            join reason_slots rs on rs.slot = floor(dr.u_reason_pick * {SLOTS_SMALL})::integer
            join org_slots os on os.slot = floor(dr.u_org * {SLOTS_BIG})::integer
            join g_orgs o on o.org_idx = os.org_idx
            join day_slots ds
                on ds.profile = o.profile and ds.slot = floor(dr.u_day * {SLOTS_BIG})::integer
            join hour_slots hs
                on hs.profile = o.profile and hs.slot = floor(dr.u_hour * {SLOTS_SMALL})::integer
            left join agent_slots ag
                on ag.org_idx = o.org_idx
                and ag.slot = floor(dr.u_agent * {AGENT_SLOTS})::integer
            left join g_agents a on a.agent_id = ag.agent_id
        ),
        outcomes as (
            select *,
                case
                    when dirt = 'unmapped_outcome'
                        then {sql_list(UNMAPPED_OUTCOMES)}[
                            floor(u_out2 * {len(UNMAPPED_OUTCOMES)})::integer + 1]
                    when dirt in ('transferred_at_null', 'transferred_at_outside')
                        then 'transferred'
                    when profile = 'business' and (local_hour < 8 or local_hour > 18)
                        and u_out2 < 0.3 then 'voicemail'
                    when u_out < skill then 'resolved'
                    when (u_out - skill) / (1 - skill) < 0.38 then 'transferred'
                    when (u_out - skill) / (1 - skill) < 0.52 then 'escalated'
                    when (u_out - skill) / (1 - skill) < 0.78 then 'abandoned'
                    when (u_out - skill) / (1 - skill) < 0.87 then 'voicemail'
                    when (u_out - skill) / (1 - skill) < 0.93 then 'failed'
                    else 'no-answer'
                end as base_outcome
            from placed
        ),
        durations as (
            select *,
                least(3600.0, greatest(1.0,
                    case base_outcome
                        when 'resolved' then 150.0 when 'transferred' then 210.0
                        when 'escalated' then 240.0 when 'abandoned' then 35.0
                        when 'voicemail' then 40.0 when 'failed' then 4.0
                        when 'no-answer' then 25.0 else 90.0 end
                    * pace
                    * exp(case when base_outcome = 'abandoned' then 0.9
                               when base_outcome in ('resolved', 'transferred', 'escalated')
                               then 0.55 else 0.5 end * z_dur))) as secs,
                base_outcome in ('transferred', 'escalated') as is_transfer
            from outcomes
        ),
        analysed as (
            select *,
                floor(secs * 1000000)::bigint as dur_us,
                (base_outcome not in ('voicemail', 'failed', 'no-answer') and secs >= 8
                    and u_analysed >= 0.03) as is_analysed
            from durations
        ),
        finished as (
        select
            call_idx,
            uid({k}, call_idx, 100) as call_id,
            org_id, agent_id, tz, profile, skill, pace, dirt, base_outcome, secs,
            started_us, dur_us, started_us + dur_us as ended_us,
            case when dirt = 'null_outcome' then (case when u_var_out < 0.75 then null else ' ' end)
                 else vary_text(base_outcome, u_var_out) end as outcome_raw,
            case
                when not is_analysed then null
                when u_blank < 0.02 then (case when u_blank < 0.01 then '' else '  ' end)
                else vary_text(
                    case
                        when base_outcome = 'resolved' then
                            case when u_sent - (skill - 0.6) * 0.3 < 0.62 then 'positive'
                                 when u_sent - (skill - 0.6) * 0.3 < 0.87 then 'neutral'
                                 when u_sent - (skill - 0.6) * 0.3 < 0.93 then 'mixed'
                                 else 'negative' end
                        when is_transfer then
                            case when u_sent < 0.12 then 'positive'
                                 when u_sent < 0.45 then 'neutral'
                                 when u_sent < 0.62 then 'mixed' else 'negative' end
                        when base_outcome = 'abandoned' then
                            case when u_sent < 0.05 then 'positive'
                                 when u_sent < 0.40 then 'neutral'
                                 when u_sent < 0.55 then 'mixed' else 'negative' end
                        else
                            case when u_sent < 0.2 then 'positive'
                                 when u_sent < 0.8 then 'neutral'
                                 when u_sent < 0.9 then 'mixed' else 'negative' end
                    end, u_var_sent)
            end as sentiment_raw,
            case when is_analysed then least(9, floor(ln(1.0 - u_corr) / ln(
                least(0.9, greatest(0.05,
                    case when base_outcome = 'resolved' then 0.28
                         when is_transfer then 0.6
                         when base_outcome = 'abandoned' then 0.5 else 0.4 end
                    + (0.62 - skill) * 0.5)))))::integer end as corrections,
            case
                when not is_analysed then null
                when (is_transfer and u_reason < 0.85)
                    or (base_outcome = 'resolved' and u_reason < 0.02) then (
                    case
                        when u_reason_var < 0.55 then upper(reason_canon[1]) || reason_canon[2:]
                        when u_reason_var < 0.75 then reason_canon
                        when u_reason_var < 0.80 then upper(reason_canon)
                        when u_reason_var < 0.88
                            then '  ' || replace(reason_canon, ' ', '   ') || ' '
                        when u_reason_var < 0.94 then ' ' || reason_canon || '  '
                        when u_reason_var < 0.97 then reason_canon || chr(10)
                        else chr(9) || upper(reason_canon[1]) || reason_canon[2:]
                    end)
                when is_transfer and u_reason < 0.93 then (case when u_reason < 0.89 then ''
                                                               else '   ' end)
            end as reason_raw,
            case
                when not is_transfer or dirt = 'transferred_at_null' then null
                when dirt = 'transferred_at_outside' then
                    case when u_transfer < 0.5
                        then started_us + dur_us + 1000000 + floor(u_transfer * 240000000)::bigint
                        else started_us - 1000000 - floor(u_transfer * 120000000)::bigint end
                else started_us + floor(dur_us * (0.3 + 0.65 * u_transfer))::bigint
            end as transferred_us,
            case
                when dirt = 'in_progress' then 1
                when {forced} and call_idx < {2 * nk}
                    then (case when call_idx < {nk} then 3 else 1 end)
                when u_ver < 0.2 then 1 when u_ver < 0.75 then 2 else 3
            end as n_versions,
            u_dup,
            least(400, greatest(1, round(secs / (13.0 + 6.0 * u_turn))))::integer as n_llm,
            (u_stt < 0.6)::integer as n_stt_extra,
            case when base_outcome in ('voicemail', 'failed', 'no-answer') then 0
                 when base_outcome = 'abandoned' then floor(u_tool * 1.5)::integer
                 else floor(u_tool * 4.2)::integer end as n_tool,
            extract_label(started_us, {p.cap_day}) as ev_part
        from analysed
        )
        -- event totals per call and their duplicate copies (same file, and a later file)
        select *,
            2 * n_llm + n_stt_extra + n_tool as n_ev,
            floor((2 * n_llm + n_stt_extra + n_tool) * {d / 2} + u01({k}, call_idx, 24))::integer
                as n_dup_ev,
            floor((2 * n_llm + n_stt_extra + n_tool) * {d / 2} + u01({k}, call_idx, 25))::integer
                as n_redeliver
        from finished
        """
    )


def build_call_rows(con: duckdb.DuckDBPyConnection, p: CallParams) -> None:
    """Expand ``calls_t`` into ``call_rows``: the raw versions, with their file and labels."""
    k = p.key
    con.execute(
        f"""
        create or replace table call_rows as
        with expanded as (
            select c.*, unnest(range(n_versions
                + (dirt in ('duplicate_version', 'null_id_row'))::integer)) as r
            from calls_t c
            where dirt <> 'call_never_arrives'
        ),
        typed as (
            select *,
                case when dirt = 'in_progress' then 0 else 3 - n_versions end as first_type,
                case when dirt = 'in_progress' then 0 else 2 end as last_type,
                r = n_versions and dirt = 'duplicate_version' as is_dup_copy,
                r = n_versions and dirt = 'null_id_row' as is_null_id_row
            from expanded
        ),
        versioned as (
            select *,
                case
                    when r < n_versions then first_type + r
                    when is_dup_copy then first_type + floor(u_dup * n_versions)::integer
                    else last_type
                end as vtype
            from typed
        ),
        stamped as (
            select *,
                vtype = last_type as is_latest,
                case vtype
                    when 0 then started_us
                        + floor(u01({k}, call_idx, 30) * least(2000000, dur_us // 2))::bigint
                    when 1 then ended_us + 200000
                        + floor(u01({k}, call_idx, 31) * 5000000)::bigint
                    else ended_us + 60000000 + floor(u01({k}, call_idx, 32) * 3540000000)::bigint
                end as updated_us
            from versioned
        )
        select
            call_idx, r, dirt, vtype, is_latest, is_dup_copy, is_null_id_row, n_versions,
            case when is_null_id_row then null else call_id end as id,
            case when is_latest and dirt = 'null_organization_id' then null else org_id end
                as organization_id,
            agent_id,
            case when is_latest and dirt = 'null_started_at' then null else ts_of(started_us) end
                as started_at,
            case
                when vtype = 0 then null
                when is_latest and dirt = 'ended_before_started' then ts_of(
                    started_us - 1000000 - floor(u01({k}, call_idx, 33) * 600000000)::bigint)
                else ts_of(ended_us)
            end as ended_at,
            case when vtype = 0 then null else outcome_raw end as outcome,
            case when vtype = 0 then null else ts_of(transferred_us) end as transferred_at,
            case when vtype = 2 then sentiment_raw end as sentiment,
            case when vtype = 2 then corrections end as user_corrections,
            case when vtype = 2 then reason_raw end as escalation_reason,
            ts_of(updated_us) as updated_at,
            updated_us,
            extract_label(updated_us, {p.cap_day}) as part,
            case when is_dup_copy and u_dup < 0.5 then 'redelivered' else 'part' end as file_stem
        from stamped
        """
    )


CALL_COLUMNS = (
    "id, organization_id, agent_id, started_at, ended_at, outcome, transferred_at, "
    "sentiment, user_corrections, escalation_reason, updated_at"
)
EVENT_COLUMNS = "event_id, call_id, event_type, occurred_at, payload"


def event_rows_sql(p: CallParams, part: str | None, redelivered: bool) -> str:
    """Rows (call, k_eff) of the events of one weekly file, or of the redelivered copies."""
    k = p.key
    where = f"where ev_part = {sql_str(part)}" if part is not None else ""
    cols = "call_idx, call_id, started_us, dur_us, n_llm, n_stt_extra, n_tool, n_ev, skill"
    inner = f"{cols}, dirt = 'call_never_arrives' as never_arrives"
    if redelivered:
        return f"""
            select {cols}, never_arrives, true as is_copy,
                (h64({k}, call_idx * 4096 + j, 240) % n_ev)::bigint as k_eff
            from (select {inner}, unnest(range(n_redeliver)) as j
                  from calls_t where n_redeliver > 0)
        """
    return f"""
        select {cols}, never_arrives, r >= n_ev as is_copy,
            case when r < n_ev then r
                 else (h64({k}, call_idx * 4096 + r, 230) % n_ev)::bigint end as k_eff
        from (select {inner}, unnest(range(n_ev + n_dup_ev)) as r from calls_t {where})
    """


# Event type codes (t) and dirt codes (e; 0 = clean) used inside the event SQL.
EVENT_TYPES = ("llm", "stt", "tool")
# What the variant index (s) of a dirt code means, per event type: the field or the value.
EVENT_DIRT_VARIANTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("llm", "missing_field"): ("ttft_ms", "total_tokens", "cached_tokens"),
    ("llm", "string_number"): ("ttft_ms", "total_tokens"),
    ("llm", "boolean_value"): ("ttft_ms", "cached_tokens"),
    ("llm", "out_of_range"): ("negative_ttft_ms", "cached_above_total", "zero_total_tokens"),
    ("stt", "missing_field"): ("confidence",),
    ("stt", "string_number"): ("confidence",),
    ("stt", "boolean_value"): ("confidence",),
    ("stt", "out_of_range"): ("confidence_above_1", "confidence_below_0"),
    ("tool", "missing_field"): ("status",),
    ("tool", "string_number"): ("latency_ms",),
    ("tool", "boolean_value"): ("status",),
    ("tool", "out_of_range"): ("status_other",),
}


def _dirt_code(kind: str) -> int:
    return EVENT_DIRT_KINDS.index(kind) + 1


# Payload pool: categories of payload text and how many distinct payloads each holds (a power
# of two). Events draw one payload of their category: formatting JSON text once per pool entry
# instead of once per event keeps 25M events fast.
LLM_TURN_BUCKETS = 30  # clean llm payloads by turn (context grows with the turn), capped
CAT_STT, CAT_TOOL_OK, CAT_TOOL_ERR = 30, 31, 32
CAT_UNKNOWN, CAT_MALFORMED, CAT_FIELD_DIRT = 40, 41, 50
STATUS_VARIED_BELOW = 328  # of 4096 clean tool payloads, these have a status in other case


def _pool_categories() -> list[tuple[int, int, int, int, int]]:
    """(category, size, t, e, s) of every payload category."""
    cats = [(tb, 2048, 0, 0, 0) for tb in range(LLM_TURN_BUCKETS)]
    cats += [(CAT_STT, 4096, 1, 0, 0), (CAT_TOOL_OK, 4096, 2, 0, 0), (CAT_TOOL_ERR, 4096, 2, 0, 1)]
    cats.append((CAT_UNKNOWN, 256, 0, _dirt_code("unknown_event_type"), 0))
    cats += [(CAT_MALFORMED + t, 1024, t, _dirt_code("malformed_json"), 0) for t in range(3)]
    for (etype, kind), variants in EVENT_DIRT_VARIANTS.items():
        t = EVENT_TYPES.index(etype)
        e = _dirt_code(kind)
        for s in range(len(variants)):
            cats.append((CAT_FIELD_DIRT + t * 16 + (e - 4) * 4 + s, 512, t, e, s))
    return cats


def build_event_pool(con: duckdb.DuckDBPyConnection, p: CallParams) -> None:
    """Create ``ev_pool(pkey, payload)``: every payload text an event can carry."""
    k = p.key
    cats = ", ".join(f"({c}, {n}, {t}, {e}, {s})" for c, n, t, e, s in _pool_categories())
    miss, strn, boolv, oor = (_dirt_code(x) for x in (
        "missing_field", "string_number", "boolean_value", "out_of_range"))
    malformed = _dirt_code("malformed_json")
    unknown = _dirt_code("unknown_event_type")
    n_bad = len(BAD_TOOL_STATUSES)
    con.execute(
        f"""
        create or replace table ev_pool as
        with entries as (
            select cat, t, e, s, unnest(range(size)) as v
            from (values {cats}) c(cat, size, t, e, s)
        ),
        drawn as (
            select *, cat * 4096 + v as pkey,
                h64({k}, cat * 4096 + v, 250) as hc, h64({k}, cat * 4096 + v, 251) as hd,
                case when cat < {LLM_TURN_BUCKETS} then cat
                     else (h64({k}, cat * 4096 + v, 252) % {LLM_TURN_BUCKETS})::integer end
                    as turn
            from entries
        ),
        numbers as (
            select *,
                u16(hd, 16) as u_var,
                600 + turn * 140 + floor(u16(hc, 32) * 200)::bigint as prompt,
                15 + floor(u16(hc, 48) * 110)::bigint as completion,
                40 + floor(exp(5.0 + 0.9 * z32(hc, 0)))::bigint as latency
            from drawn
        ),
        fields as (
            select *,
                case when e = {oor} and s = 2 then 0 else prompt + completion end
                    as total_tokens,
                case when e = {oor} and s = 1
                        then prompt + completion + 1 + floor(u_var * 300)::bigint
                     when turn = 0 then floor(u16(hd, 0) * 100)::bigint
                     else floor(prompt * (0.5 + 0.45 * u16(hd, 0)))::bigint end
                    as cached_tokens,
                dec1((case when e = {oor} and s = 0 then -1 else 1 end)
                    * floor(400.0 + 3600.0 * exp(0.4 * z32(hc, 0)))::bigint) as ttft_txt,
                case when t = 1 and e = {oor} and s = 0
                        then dec3(1010 + floor(u_var * 300)::bigint)
                     when t = 1 and e = {oor} then dec3(-10 - floor(u_var * 200)::bigint)
                     else concat('0.', 100 + floor(885 - 400 * pow(u16(hc, 0), 3))::bigint)
                end as conf_txt,
                case
                    when e = {oor} then {sql_list(BAD_TOOL_STATUSES)}[
                        floor(u_var * {n_bad})::integer + 1]
                    else (case when s = 0 then 'success' else 'error' end)
                end as status_raw
            from numbers
        ),
        bodies as (
            select *,
                case
                    when e = {unknown} then concat('{{"duration_ms": ', latency % 500, '}}')
                    when t = 0 then concat(
                        '{{',
                        case when e = {miss} and s = 0 then '' else '"ttft_ms": ' end,
                        case when e = {miss} and s = 0 then ''
                             when e = {strn} and s = 0 then concat('"', ttft_txt, '"')
                             when e = {boolv} and s = 0 then 'true'
                             else ttft_txt end,
                        case when e = {miss} and s = 0 then '' else ', ' end,
                        '"prompt_tokens": ', prompt,
                        case when e = {miss} and s = 2 then '' else ', "cached_tokens": ' end,
                        case when e = {miss} and s = 2 then ''
                             when e = {boolv} and s = 1 then 'false'
                             else cached_tokens::varchar end,
                        ', "completion_tokens": ', completion,
                        case when e = {miss} and s = 1 then '' else ', "total_tokens": ' end,
                        case when e = {miss} and s = 1 then ''
                             when e = {strn} and s = 1 then concat('"', total_tokens, '"')
                             else total_tokens::varchar end,
                        '}}')
                    when t = 1 then concat(
                        '{{',
                        case when e = {miss} then '' else '"confidence": ' end,
                        case when e = {miss} then ''
                             when e = {strn} then concat('"', conf_txt, '"')
                             when e = {boolv} then 'true'
                             else conf_txt end,
                        case when e = {miss} then '' else ', ' end,
                        '"text_chars": ', 5 + floor(u16(hc, 32) * 140)::bigint,
                        '}}')
                    else concat(
                        '{{"name": "',
                        {sql_list(TOOL_NAMES)}[((hc >> 32) % {len(TOOL_NAMES)})::integer + 1],
                        '"',
                        case when e = {miss} then '' else ', "status": ' end,
                        case when e = {miss} then ''
                             when e = {boolv} then 'true'
                             when e = 0 and v < {STATUS_VARIED_BELOW} then concat('"',
                                case when v % 2 = 0 then upper(status_raw)
                                     else upper(status_raw[1]) || status_raw[2:] end, '"')
                             else concat('"', status_raw, '"') end,
                        ', "latency_ms": ',
                        case when e = {strn} then concat('"', latency, '"')
                             else latency::varchar end,
                        '}}')
                end as body
            from fields
        )
        select pkey,
            case when e = {malformed}
                then left(body, greatest(1, floor(length(body) * (0.2 + 0.6 * u_var)))::integer)
                else body end as payload
        from bodies
        order by pkey
        """
    )


def event_plan_sql(p: CallParams, rows_sql: str) -> str:
    """Per event row, in small integers: type t, turn, dirt code e, dirt variant s, flags, and
    the key of its payload in ``ev_pool``.

    Everything here is cheap (no text), so the dirt counts can be taken from this alone.
    """
    k = p.key
    d = p.dirt_rate
    nk = len(EVENT_DIRT_KINDS)
    n_variants = " ".join(
        f"when t = {EVENT_TYPES.index(t)} and e = {_dirt_code(kind)} then {len(v)}"
        for (t, kind), v in EVENT_DIRT_VARIANTS.items()
    )
    unknown = _dirt_code("unknown_event_type")
    malformed = _dirt_code("malformed_json")
    return f"""
        with typed as (
            select *,
                (case when k_eff < 2 * n_llm then (k_eff + 1) % 2
                      when k_eff < 2 * n_llm + n_stt_extra then 1
                      else 2 end)::integer as t,
                case when k_eff < 2 * n_llm then k_eff // 2
                     when k_eff < 2 * n_llm + n_stt_extra then n_llm
                     else k_eff - 2 * n_llm - n_stt_extra end as turn,
                call_idx * 4096 + k_eff as eidx
            from ({rows_sql})
        ),
        hashed as (
            select *, h64({k}, eidx, 210) as ha, h64({k}, eidx, 211) as hb from typed
        ),
        dirty as (
            select *,
                case when u32(ha, 0) < {d * nk}
                    then floor(u32(ha, 0) / {d if d > 0 else 1})::integer + 1 else 0 end as e
            from hashed
        ),
        variants as (
            select *,
                floor(u16(ha, 32) * case {n_variants}
                    when e = {unknown} then {len(UNKNOWN_EVENT_TYPES)} else 1 end)::integer
                    as s
            from dirty
        ),
        categorised as (
            select *,
                case
                    when e = {unknown} then {CAT_UNKNOWN}
                    when e = {malformed} then {CAT_MALFORMED} + t
                    when e >= 4 then {CAT_FIELD_DIRT} + t * 16 + (e - 4) * 4 + s
                    when t = 0 then least(turn, {LLM_TURN_BUCKETS - 1})
                    when t = 1 then {CAT_STT}
                    when u16(hb, 48) < 0.78 + 0.2 * skill then {CAT_TOOL_OK}
                    else {CAT_TOOL_ERR}
                end as cat
            from variants
        ),
        keyed as (
            select *,
                (hb >> 16) & (case when cat < {LLM_TURN_BUCKETS} then 2047
                                   when cat < {CAT_UNKNOWN} then 4095
                                   when cat = {CAT_UNKNOWN} then 255
                                   when cat < {CAT_FIELD_DIRT} then 1023
                                   else 511 end) as v
            from categorised
        )
        select *,
            (cat * 4096 + v)::bigint as pkey,
            e <> {unknown} and u16(ha, 48) < 0.03 as type_case_varied,
            u16(hb, 0) < 0.005 as occurred_null,
            cat in ({CAT_TOOL_OK}, {CAT_TOOL_ERR}) and v < {STATUS_VARIED_BELOW}
                as status_case_varied
        from keyed
    """


def event_select(p: CallParams, rows_sql: str) -> str:
    """The telemetry_events rows (raw columns only) for the given event rows.

    Needs ``ev_pool`` (``build_event_pool``). Row order follows `rows_sql`.
    """
    plan = event_plan_sql(p, rows_sql)
    unknown = _dirt_code("unknown_event_type")
    null_call = _dirt_code("null_call_id")
    return f"""
        select
            ((((ev.ha & 18446744073709490175::ubigint) | 16384::ubigint)::uhugeint << 64)
              | ((ev.hb & 4611686018427387903::ubigint) | 9223372036854775808::ubigint)
            )::uuid::varchar as event_id,
            case when ev.e = {null_call} then null else ev.call_id end as call_id,
            case
                when ev.e = {unknown} then {sql_list(UNKNOWN_EVENT_TYPES)}[ev.s + 1]
                when not ev.type_case_varied then {sql_list(EVENT_TYPES)}[ev.t + 1]
                when (ev.ha >> 48) % 2 = 0
                    then {sql_list([x.upper() for x in EVENT_TYPES])}[ev.t + 1]
                else {sql_list([x.capitalize() for x in EVENT_TYPES])}[ev.t + 1]
            end as event_type,
            case when ev.occurred_null then null
                 when ev.t = 2 then ts_of(ev.started_us
                    + floor(ev.dur_us * (0.1 + 0.8 * u16(ev.hb, 32)))::bigint)
                 else ts_of(ev.started_us + floor(ev.dur_us * (ev.turn
                    + case when ev.t = 0 then 0.6 else 0.1 end + 0.25 * u16(ev.hb, 32))
                    / (ev.n_llm + 1))::bigint)
            end as occurred_at,
            pool.payload
        from ({plan}) ev
        join ev_pool pool on pool.pkey = ev.pkey
    """
