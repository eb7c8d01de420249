{#- Every (organization, bucket) whose counted calls may have changed since the oldest load of
    the bucket-replaced models (fct_calls, the section marts), with the last time it was
    touched: the current and the previous bucket of each call version loaded since, and the
    bucket of each call whose telemetry was loaded since. Computed once per run; each of those
    models recomputes the buckets touched after its own watermark (macros/touched_buckets.sql).
    Empty in a full refresh and in the first build, where every model is built whole. -#}
{{ config(materialized='table') }}
-- depends_on: {{ ref('int_calls') }}
-- depends_on: {{ ref('int_call_telemetry') }}

{%- set since = bucket_replaced_watermark() %}

with
{% if since is none -%}
touches as (
    select
        cast(null as string) as organization_id,
        cast(null as {{ type_timestamptz() }}) as bucket_start,
        cast(null as {{ type_timestamptz() }}) as touched_at
    where false
)
{%- else -%}
loaded_calls as (
    select
        organization_id,
        bucket_start,
        prev_organization_id,
        prev_bucket_start,
        _loaded_at
    from {{ ref('int_calls') }}
    where _loaded_at > {{ since }}
),

loaded_telemetry as (
    select
        call_id,
        _loaded_at
    from {{ ref('int_call_telemetry') }}
    where _loaded_at > {{ since }}
),

touches as (
    select
        organization_id,
        bucket_start,
        _loaded_at as touched_at
    from loaded_calls
    union all
    select
        prev_organization_id as organization_id,
        prev_bucket_start as bucket_start,
        _loaded_at as touched_at
    from loaded_calls
    union all
    select
        int_calls.organization_id,
        int_calls.bucket_start,
        loaded_telemetry._loaded_at as touched_at
    from loaded_telemetry
    inner join {{ ref('int_calls') }} as int_calls
        on loaded_telemetry.call_id = int_calls.call_id
)
{%- endif %}

select
    organization_id,
    bucket_start,
    max(touched_at) as touched_at
from touches
where organization_id is not null and bucket_start is not null
group by organization_id, bucket_start
