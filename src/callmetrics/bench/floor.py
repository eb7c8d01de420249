"""The floor: the least work any design can do to get every organization's payload parts.

One hand-written DuckDB query reads the raw Parquet once and computes, for every organization
and 15-minute UTC bucket (the marts' grain, which holds every UTC day and hour), the additive
parts the payload is made of: counts by category, duration sums, sentiment, corrections,
latency, token, confidence and tool parts, per agent and per escalation reason. It does all the
work the contract demands and nothing else:

- call versions deduplicated to the latest ``updated_at``; validity judged on that row alone;
- duplicate telemetry events counted once; event types and JSON payloads checked field by
  field (a value counts only when it is a JSON number in range);
- events of calls that are not counted dropped by the join.

There is no incremental state, no snapshot, no quality model and no dbt: the full build
divided by this query's time is the price of everything the warehouse adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.compute as pc

BUCKET_US = 15 * 60 * 1_000_000
_WS = "E' \\t\\n\\r'"  # "trimmed": leading and trailing spaces, tabs and line breaks

FLOOR_SQL = f"""
with
raw_calls as (
    select id, organization_id, agent_id, started_at, ended_at, outcome, transferred_at,
        sentiment, user_corrections, escalation_reason, updated_at
    from read_parquet('{{calls}}', union_by_name = true)
    where id is not null
),

raw_events as not materialized (
    select event_id, call_id, lower(trim(event_type, {_WS})) as event_type, payload
    from read_parquet('{{events}}', union_by_name = true)
    where event_id is not null and call_id is not null
),

-- Copies of an event are identical, so only rows whose event id hash repeats need grouping
-- (reading the event ids alone first): a wide aggregate over every event is the costliest
-- operation there is here, and spills at 10M calls.
repeated_event_hashes as materialized (
    select hash(event_id) as event_hash
    from raw_events
    group by event_hash
    having count(*) > 1
),

latest_calls as (
    select unnest(arg_max(raw_calls, updated_at))
    from raw_calls
    group by id
),

counted_calls as materialized (
    select
        id as call_id,
        organization_id,
        agent_id,
        epoch_us(started_at) // {BUCKET_US} as bucket,
        epoch_us(ended_at) - epoch_us(started_at) as duration_us,
        case lower(trim(outcome, {_WS}))
            when 'resolved' then 'resolved'
            when 'transferred' then 'transferred'
            when 'escalated' then 'transferred'
            when 'abandoned' then 'abandoned'
            else 'other'
        end as category,
        nullif(trim(coalesce(sentiment, ''), {_WS}), '') is not null as has_sentiment,
        lower(trim(coalesce(sentiment, ''), {_WS})) = 'positive' as is_positive,
        user_corrections is not null as has_corrections,
        user_corrections = 0 as zero_corrections,
        nullif(regexp_replace(lower(trim(coalesce(escalation_reason, ''), {_WS})),
            '\\s+', ' ', 'g'), '') as reason,
        case
            when transferred_at between started_at and ended_at
                then epoch_us(transferred_at) - epoch_us(started_at)
            else epoch_us(ended_at) - epoch_us(started_at)
        end as escalation_us
    from latest_calls
    where organization_id is not null
        and started_at is not null
        and ended_at is not null
        and ended_at >= started_at
),

parsed_events as (
    select
        hash(event_id) in (select event_hash from repeated_event_hashes) as may_repeat,
        event_id,
        call_id,
        event_type,
        json_extract(
            case when json_valid(payload) then payload end,
            ['$.ttft_ms', '$.cached_tokens', '$.total_tokens', '$.confidence', '$.status']
        ) as fields
    from raw_events
    where event_type in ('llm', 'stt', 'tool')
),

event_values as not materialized (
    select
        may_repeat,
        event_id,
        call_id,
        case when event_type = 'llm' and json_type(fields[1]) in ('BIGINT', 'UBIGINT', 'DOUBLE')
            and fields[1]::double >= 0 then fields[1]::double end as ttft_ms,
        case when event_type = 'llm'
            and json_type(fields[2]) in ('BIGINT', 'UBIGINT', 'DOUBLE')
            and json_type(fields[3]) in ('BIGINT', 'UBIGINT', 'DOUBLE')
            and fields[3]::double > 0
            and fields[2]::double between 0 and fields[3]::double
            then fields[2]::double / fields[3]::double end as token_ratio,
        case when event_type = 'stt' and json_type(fields[4]) in ('BIGINT', 'UBIGINT', 'DOUBLE')
            and fields[4]::double between 0 and 1 then fields[4]::double end as confidence,
        case when event_type = 'tool' and json_type(fields[5]) = 'VARCHAR'
            and lower(json_extract_string(fields[5], '$')) in ('success', 'error')
            then lower(json_extract_string(fields[5], '$')) = 'success' end as tool_success
    from parsed_events
),

unique_events as (
    select event_id, call_id, ttft_ms, token_ratio, confidence, tool_success
    from event_values
    where not may_repeat
    union all
    select
        event_id,
        any_value(call_id) as call_id,
        any_value(ttft_ms) as ttft_ms,
        any_value(token_ratio) as token_ratio,
        any_value(confidence) as confidence,
        any_value(tool_success) as tool_success
    from event_values
    where may_repeat
    group by event_id
),

call_telemetry as (
    select
        call_id,
        count(ttft_ms) as latency_samples,
        sum(ttft_ms) as latency_ms_sum,
        count(token_ratio) as token_samples,
        sum(token_ratio) as token_ratio_sum,
        count(confidence) as confidence_samples,
        sum(confidence) as confidence_sum,
        count(tool_success) as tool_calls,
        count_if(tool_success) as tool_successes
    from unique_events
    group by call_id
),

call_parts as materialized (
    select counted_calls.*, call_telemetry.* exclude (call_id)
    from counted_calls
    left join call_telemetry on counted_calls.call_id = call_telemetry.call_id
),

section_parts as (
    select
        'sections' as part,
        organization_id,
        bucket,
        null::varchar as key,
        count(*) as calls,
        count_if(category = 'resolved') as resolved,
        count_if(category = 'transferred') as transferred,
        count_if(category = 'abandoned') as abandoned,
        count_if(category = 'other') as other,
        sum(duration_us) as duration_us,
        count_if(has_sentiment) as sentiment_calls,
        count_if(is_positive) as positive_calls,
        count_if(has_corrections) as corrections_calls,
        count_if(zero_corrections) as zero_correction_calls,
        sum(escalation_us) filter (where category = 'transferred') as escalation_us,
        coalesce(sum(latency_samples), 0) as latency_samples,
        sum(latency_ms_sum) as latency_ms_sum,
        coalesce(sum(token_samples), 0) as token_samples,
        sum(token_ratio_sum) as token_ratio_sum,
        coalesce(sum(confidence_samples), 0) as confidence_samples,
        sum(confidence_sum) as confidence_sum,
        coalesce(sum(tool_calls), 0) as tool_calls,
        coalesce(sum(tool_successes), 0) as tool_successes
    from call_parts
    group by organization_id, bucket
),

agent_parts as (
    select
        'agents' as part,
        organization_id,
        bucket,
        agent_id as key,
        count(*) as calls,
        count_if(category = 'resolved') as resolved,
        count_if(category = 'transferred') as transferred,
        count_if(category = 'abandoned') as abandoned,
        count_if(category = 'other') as other,
        sum(duration_us) as duration_us,
        count_if(has_sentiment) as sentiment_calls,
        count_if(is_positive) as positive_calls
    from call_parts
    where agent_id is not null
    group by organization_id, bucket, agent_id
),

reason_parts as (
    select
        'reasons' as part,
        organization_id,
        bucket,
        reason as key,
        count(*) as calls,
        sum(escalation_us) as escalation_us
    from call_parts
    where category = 'transferred' and reason is not null
    group by organization_id, bucket, reason
)

select * from section_parts
union all by name
select * from agent_parts
union all by name
select * from reason_parts
"""


@dataclass(frozen=True)
class FloorResult:
    rows: int
    section_rows: int
    total_calls: int


def floor_sql(raw_dir: Path) -> str:
    """The floor query over one raw directory (paths are inlined: DuckDB needs literals)."""

    def glob(table: str) -> str:
        return str(raw_dir / table / "**" / "*.parquet").replace("'", "''")

    return FLOOR_SQL.replace("{calls}", glob("calls")).replace(
        "{events}", glob("telemetry_events")
    )


def connect(
    memory_limit: str | None = None, temp_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB set up like the warehouse's (2 threads, UTC, the memory limit)."""
    con = duckdb.connect(config={"threads": 2, "preserve_insertion_order": False})
    con.execute("set TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit}'")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"set temp_directory = '{temp_dir}'")
    return con


def run_floor(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> FloorResult:
    """Run the floor query and stream its result away, counting what it produced."""
    reader = con.sql(floor_sql(raw_dir)).to_arrow_reader()
    rows = section_rows = total_calls = 0
    for batch in reader:
        rows += batch.num_rows
        sections = pc.equal(batch.column("part"), "sections")
        section_rows += pc.sum(pc.cast(sections, "int64")).as_py() or 0
        total_calls += pc.sum(pc.filter(batch.column("calls"), sections)).as_py() or 0
    return FloorResult(rows=rows, section_rows=section_rows, total_calls=total_calls)


def floor_parts(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> list[dict]:
    """The floor's rows as dicts (tests check them against hand-worked numbers)."""
    cursor = con.execute(floor_sql(raw_dir))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
