{{ config(meta={'dagster': {'ref': {'name': 'dq_left_out_rows'}}}) }}
-- meta.dagster.ref: the test reads several models; Dagster shows it as a check of quality/dq_left_out_rows.
-- raw event rows = distinct events attached to counted calls + row-level left-out event rows
-- (duplicate copies, null ids, unknown types, orphans, events of uncounted calls):
-- returns one row when they differ.
with raw_rows as (
    select count(*) as row_count
    from {{ source('telemetry', 'telemetry_events') }}
),

attached as (
    select coalesce(sum(telemetry_event_count), 0) as row_count
    from {{ ref('fct_calls') }}
),

left_out as (
    select coalesce(sum(row_count), 0) as row_count
    from {{ ref('dq_left_out_rows') }}
    where source_table = 'telemetry_events' and is_row_level
)

select
    raw_rows.row_count as raw_event_rows,
    attached.row_count as attached_events,
    left_out.row_count as left_out_rows
from raw_rows
cross join attached
cross join left_out
where raw_rows.row_count != attached.row_count + left_out.row_count
