{{ config(meta={'dagster': {'ref': {'name': 'stg_telemetry__events'}}}) }}
-- meta.dagster.ref: Dagster shows the test as a check of staging/stg_telemetry__events.
-- The primary key of stg_telemetry__events, checked where a load can break it: every key written
-- by this dbt invocation (all of them in a full build, none on a night without a new file) is
-- not null, carries its own hash in event_hash, and is held by exactly one row of the whole
-- table. Rows of earlier loads were checked by the build that wrote them, and a load only
-- deletes or appends rows under its own keys. The other rows are found through the stored
-- 64-bit hash (8 bytes a row read), then compared on the key itself.
-- Returns each offending key.
with latest_rows as {{ cte_hint('materialized') }} (
    select
        event_key,
        event_hash
    from {{ ref('stg_telemetry__events') }}
    where _loaded_at = {{ load_time() }}
),

-- every stored row whose hash is one of the latest keys' (the latest rows among them)
same_hash_rows as {{ cte_hint('materialized') }} (
    select event_key
    from {{ ref('stg_telemetry__events') }}
    where event_hash in (select latest_rows.event_hash from latest_rows)
),

duplicated_keys as (
    select
        event_key,
        count(*) as row_count
    from same_hash_rows
    where event_key in (select latest_rows.event_key from latest_rows)
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
