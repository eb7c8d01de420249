{#- Per-agent call parts per organization, UTC 15-minute bucket and agent (calls with an agent only). -#}
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
    where agent_id is not null {{ and_in_touched_buckets('fct_calls') }}
),

bucket_parts as (
    select
        organization_id,
        bucket_start,
        agent_id,
        cast(count(*) as bigint) as total_calls,
        cast(sum(is_resolved) as bigint) as resolved_calls,
        cast(sum(is_transferred) as bigint) as transferred_calls,
        cast(sum(is_abandoned) as bigint) as abandoned_calls,
        cast(sum(is_other) as bigint) as other_calls,
        cast(sum(duration_us) as bigint) as duration_us_sum,
        cast(sum(has_sentiment) as bigint) as sentiment_calls,
        cast(sum(is_positive) as bigint) as positive_calls
    from counted_calls
    group by organization_id, bucket_start, agent_id
),

{% if is_incremental() -%}
-- One placeholder per touched bucket, so that a bucket left empty is emptied.
placeholders as (
    select
        organization_id,
        bucket_start,
        cast(null as varchar) as agent_id,
        cast(0 as bigint) as total_calls,
        cast(0 as bigint) as resolved_calls,
        cast(0 as bigint) as transferred_calls,
        cast(0 as bigint) as abandoned_calls,
        cast(0 as bigint) as other_calls,
        cast(0 as bigint) as duration_us_sum,
        cast(0 as bigint) as sentiment_calls,
        cast(0 as bigint) as positive_calls
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
    agent_id,
    total_calls,
    resolved_calls,
    transferred_calls,
    abandoned_calls,
    other_calls,
    duration_us_sum,
    sentiment_calls,
    positive_calls,
    {{ load_time() }} as _loaded_at
from all_rows
-- stored in organization and time order: a range of one organization reads few row groups
order by organization_id, bucket_start
