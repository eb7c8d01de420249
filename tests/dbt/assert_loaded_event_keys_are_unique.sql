{{ config(meta={'dagster': {'ref': {'name': 'stg_telemetry__events'}}}) }}
-- meta.dagster.ref: Dagster shows the test as a check of staging/stg_telemetry__events.
-- The primary key of stg_telemetry__events, checked where a load can break it: every key written
-- by this dbt invocation (all of them in a full build, none on a night without a new file) is
-- not null, carries its own hash in event_hash, and is held by exactly one row of the whole
-- table. Rows of earlier loads were checked by the build that wrote them, and a load only
-- deletes or appends rows under its own keys. Keys are compared through the stored 64-bit hash
-- (8 bytes a row read); only the rows of a repeated hash are compared on the key itself.
-- When every row was written by this invocation (a full build), the hashes held twice come from
-- one group-by of the hash column; otherwise from the stored rows whose hash is one of this
-- load's (a semi-join that reads the few latest rows, not the history, as its build side).
-- Returns each offending key.
{%- set every_row_is_latest = every_row_loaded_now(ref('stg_telemetry__events')) %}

-- (kept apart only when it is a few rows among many: in a full build it is the whole table)
with latest_rows as {{ cte_hint('not materialized' if every_row_is_latest else 'materialized') }} (
    select
        event_key,
        event_hash
    from {{ ref('stg_telemetry__events') }}
    where _loaded_at = {{ load_time() }}
),

-- the hashes of this load held by more than one stored row
repeated_hashes as {{ cte_hint('materialized') }} (
    select event_hash
    from {{ ref('stg_telemetry__events') }}
    {%- if not every_row_is_latest %}
    where event_hash in (select latest_rows.event_hash from latest_rows)
    {%- endif %}
    group by event_hash
    having count(*) > 1
),

duplicated_keys as (
    select
        event_key,
        count(*) as row_count
    from {{ ref('stg_telemetry__events') }}
    where event_hash in (select repeated_hashes.event_hash from repeated_hashes)
    group by event_key
    having count(*) > 1
),

bad_rows as (
    select
        event_key,
        1 as row_count
    from latest_rows
    where
        event_key is null
        or event_hash is distinct from {{ key_hash('event_key') }}
)

select
    event_key,
    row_count
from duplicated_keys
union all
select
    event_key,
    row_count
from bad_rows
