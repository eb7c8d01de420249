{{ config(meta={'dagster': {'ref': {'name': 'stg_telemetry__events'}}}) }}
-- meta.dagster.ref: Dagster shows the test as a check of staging/stg_telemetry__events.
-- The primary key of stg_telemetry__events, checked where a load can break it: every key written
-- by this dbt invocation (all of them in a full build, none on a night without a new file) is
-- not null and held by exactly one row of the whole table. Rows of earlier loads were checked
-- by the build that wrote them, and a load only deletes or appends rows under its own keys.
-- Returns each offending key.
with events as (
    select
        event_key,
        _loaded_at
    from {{ ref('stg_telemetry__events') }}
),

latest_keys as (
    select event_key
    from events
    where _loaded_at = {{ load_time() }}
)

select
    event_key,
    count(*) as row_count
from events
where
    event_key in (select latest_keys.event_key from latest_keys)
    or event_key is null
group by event_key
having count(*) > 1 or event_key is null
