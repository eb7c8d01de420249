{#- Escalated calls and their time before escalation
    per organization, UTC 15-minute bucket and normalised reason. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_buckets',
        unique_key=['organization_id', 'bucket_start'],
        keep_rows_where='escalated_calls > 0',
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
    where is_escalated = 1 and escalation_reason is not null {{ and_in_touched_buckets('fct_calls') }}
),

bucket_parts as (
    select
        organization_id,
        bucket_start,
        escalation_reason as reason,
        cast(count(*) as bigint) as escalated_calls,
        cast(sum(escalation_us) as bigint) as escalation_us_sum
    from counted_calls
    group by organization_id, bucket_start, escalation_reason
),

{% if is_incremental() -%}
-- One placeholder per touched bucket, so that a bucket left empty is emptied.
placeholders as (
    select
        organization_id,
        bucket_start,
        cast(null as varchar) as reason,
        cast(0 as bigint) as escalated_calls,
        cast(0 as bigint) as escalation_us_sum
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
    reason,
    escalated_calls,
    escalation_us_sum,
    {{ load_time() }} as _loaded_at
from all_rows
-- stored in organization and time order: a range of one organization reads few row groups
order by organization_id, bucket_start
