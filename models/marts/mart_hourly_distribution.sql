{#- Calls and duration per organization and UTC 15-minute bucket, with the bucket's UTC hour of day. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_buckets',
        unique_key=['organization_id', 'bucket_start'],
        keep_rows_where='total_calls > 0',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('int_calls') }}
-- depends_on: {{ ref('int_call_telemetry') }}

with
{% if is_incremental() -%}
touched_buckets as (
    {{ touched_buckets() }}
),
{%- endif %}

counted_calls as (
    select *
    from {{ ref('fct_calls') }}
    where true {{ and_in_touched_buckets('fct_calls') }}
),

bucket_parts as (
    select
        organization_id,
        bucket_start,
        cast(count(*) as bigint) as total_calls,
        cast(sum(duration_us) as bigint) as duration_us_sum
    from counted_calls
    group by organization_id, bucket_start
),

{% if is_incremental() -%}
-- One placeholder per touched bucket, so that a bucket left empty is emptied.
placeholders as (
    select
        organization_id,
        bucket_start,
        cast(0 as bigint) as total_calls,
        cast(0 as bigint) as duration_us_sum
    from touched_buckets
),

all_rows as (
    select * from bucket_parts
    union all
    select * from placeholders
)
{%- else -%}
all_rows as (
    select * from bucket_parts
)
{%- endif %}

select
    organization_id,
    bucket_start,
    cast(hour(bucket_start at time zone 'UTC') as integer) as hour_of_day,
    total_calls,
    duration_us_sum,
    {{ load_time() }} as _loaded_at
from all_rows
-- stored in organization and time order: a range of one organization reads few row groups
order by organization_id, bucket_start
