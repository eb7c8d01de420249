{#- AI quality parts (corrections, tokens, confidence, tools, latency)
    per organization and UTC 15-minute bucket. -#}
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
        cast(sum(has_corrections_data) as bigint) as corrections_calls,
        cast(sum(has_zero_corrections) as bigint) as zero_correction_calls,
        cast(sum(token_sample_count) as bigint) as token_sample_count,
        cast({{ ordered_sum('token_ratio_sum') }} as double) as token_ratio_sum,
        cast(sum(confidence_sample_count) as bigint) as confidence_sample_count,
        cast({{ ordered_sum('confidence_sum') }} as double) as confidence_sum,
        cast(sum(tool_call_count) as bigint) as tool_call_count,
        cast(sum(tool_success_count) as bigint) as tool_success_count,
        cast(sum(latency_sample_count) as bigint) as latency_sample_count,
        cast({{ ordered_sum('latency_ms_sum') }} as double) as latency_ms_sum
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
        cast(0 as bigint) as corrections_calls,
        cast(0 as bigint) as zero_correction_calls,
        cast(0 as bigint) as token_sample_count,
        cast(0 as double) as token_ratio_sum,
        cast(0 as bigint) as confidence_sample_count,
        cast(0 as double) as confidence_sum,
        cast(0 as bigint) as tool_call_count,
        cast(0 as bigint) as tool_success_count,
        cast(0 as bigint) as latency_sample_count,
        cast(0 as double) as latency_ms_sum
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
    total_calls,
    corrections_calls,
    zero_correction_calls,
    token_sample_count,
    token_ratio_sum,
    confidence_sample_count,
    confidence_sum,
    tool_call_count,
    tool_success_count,
    latency_sample_count,
    latency_ms_sum,
    {{ load_time() }} as _loaded_at
from all_rows
-- stored in organization and time order: a range of one organization reads few row groups
order by organization_id, bucket_start
