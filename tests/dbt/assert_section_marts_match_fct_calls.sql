{{ config(meta={'dagster': {'ref': {'name': 'mart_metrics'}}}) }}
-- meta.dagster.ref: the test reads several models; Dagster shows it as a check of marts/mart_metrics.
-- Every section mart holds, bucket by bucket, exactly the calls of fct_calls: a bucket missing,
-- left over, or with another count in any mart is returned (and fails the test).
with fct_buckets as (
    select
        organization_id,
        bucket_start,
        count(*) as total_calls,
        sum(is_escalated) as escalated_calls,
        sum(is_escalated) filter (where escalation_reason is not null) as escalated_with_reason,
        count(*) filter (where agent_id is not null) as calls_with_agent,
        sum(duration_us) as duration_us_sum
    from {{ ref('fct_calls') }}
    group by organization_id, bucket_start
),

mart_buckets as (
    {%- set call_grain_marts = [
        'mart_metrics', 'mart_daily_volume', 'mart_hourly_distribution',
        'mart_resolution_breakdown', 'mart_ai_insights'
    ] %}
    {%- for mart in call_grain_marts %}
    select
        '{{ mart }}' as mart,
        organization_id,
        bucket_start,
        total_calls as mart_calls
    from {{ ref(mart) }}
    union all
    {%- endfor %}
    select
        'mart_agent_performance' as mart,
        organization_id,
        bucket_start,
        sum(total_calls) as mart_calls
    from {{ ref('mart_agent_performance') }}
    group by organization_id, bucket_start
    union all
    select
        'mart_escalation_reasons' as mart,
        organization_id,
        bucket_start,
        sum(escalated_calls) as mart_calls
    from {{ ref('mart_escalation_reasons') }}
    group by organization_id, bucket_start
    union all
    select
        'mart_metrics.escalated_calls' as mart,
        organization_id,
        bucket_start,
        escalated_calls as mart_calls
    from {{ ref('mart_metrics') }}
    union all
    select
        'mart_metrics.duration_us_sum' as mart,
        organization_id,
        bucket_start,
        duration_us_sum as mart_calls
    from {{ ref('mart_metrics') }}
),

mart_names as (
    select distinct mart
    from mart_buckets
),

expected as (
    select
        marts.mart,
        fct_buckets.organization_id,
        fct_buckets.bucket_start,
        case
            when marts.mart = 'mart_agent_performance' then fct_buckets.calls_with_agent
            when marts.mart = 'mart_escalation_reasons' then fct_buckets.escalated_with_reason
            when marts.mart = 'mart_metrics.escalated_calls' then fct_buckets.escalated_calls
            when marts.mart = 'mart_metrics.duration_us_sum' then fct_buckets.duration_us_sum
            else fct_buckets.total_calls
        end as fct_calls
    from fct_buckets
    cross join mart_names as marts
)

select
    coalesce(expected.mart, mart_buckets.mart) as mart,
    coalesce(expected.organization_id, mart_buckets.organization_id) as organization_id,
    coalesce(expected.bucket_start, mart_buckets.bucket_start) as bucket_start,
    expected.fct_calls,
    mart_buckets.mart_calls
from expected
full outer join mart_buckets
    on
        expected.mart = mart_buckets.mart
        and expected.organization_id = mart_buckets.organization_id
        and expected.bucket_start = mart_buckets.bucket_start
where coalesce(expected.fct_calls, 0) != coalesce(mart_buckets.mart_calls, 0)
    or (expected.mart is null and mart_buckets.mart_calls is not null)
