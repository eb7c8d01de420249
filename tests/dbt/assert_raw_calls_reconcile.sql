{{ config(meta={'dagster': {'ref': {'name': 'dq_left_out_rows'}}}) }}
-- meta.dagster.ref: the test reads several models; Dagster shows it as a check of quality/dq_left_out_rows.
-- raw call rows = counted calls (fct_calls) + left-out call rows (dq_left_out_rows):
-- returns one row when they differ.
with raw_rows as (
    select count(*) as row_count
    from {{ source('platform', 'calls') }}
),

counted as (
    select count(*) as row_count
    from {{ ref('fct_calls') }}
),

left_out as (
    select coalesce(sum(row_count), 0) as row_count
    from {{ ref('dq_left_out_rows') }}
    where source_table = 'calls' and is_row_level
)

select
    raw_rows.row_count as raw_call_rows,
    counted.row_count as counted_calls,
    left_out.row_count as left_out_rows
from raw_rows
cross join counted
cross join left_out
where raw_rows.row_count != counted.row_count + left_out.row_count
