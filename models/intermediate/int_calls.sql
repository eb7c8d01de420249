{#- Every call (its latest version) judged for the metrics: validity, the left-out reason, the
    outcome category, the UTC bucket, the duration and the escalation time.
    Incremental: a run rewrites the calls whose latest version was loaded by this run and
    remembers where each of them was before (prev_*), so that the marts can recompute both the
    bucket a call left and the bucket it entered. -#}
{{ config(**incremental_config('keys', unique_key='call_id')) }}

with new_versions as (
    select *
    from {{ ref('stg_platform__calls') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ loaded_watermark() }}
    {%- endif %}
),

outcome_categories as (
    select
        outcome_code,
        outcome_category
    from {{ ref('outcome_categories') }}
),

{% if is_incremental() -%}
previous_versions as (
    select
        call_id,
        organization_id,
        bucket_start,
        is_counted
    from {{ this }}
    where call_id in (select new_versions.call_id from new_versions)
),
{%- else -%}
previous_versions as (
    select
        cast(null as string) as call_id,
        cast(null as string) as organization_id,
        cast(null as {{ type_timestamptz() }}) as bucket_start,
        cast(null as boolean) as is_counted
    where false
),
{%- endif %}

judged as (
    select
        new_versions.call_id,
        new_versions.organization_id,
        new_versions.agent_id,
        new_versions.started_at,
        new_versions.ended_at,
        new_versions.transferred_at,
        new_versions.outcome_code,
        new_versions.sentiment,
        new_versions.user_corrections,
        new_versions.escalation_reason,
        new_versions.updated_at,
        case
            when new_versions.organization_id is null then 'null_organization_id'
            when new_versions.started_at is null then 'null_started_at'
            when new_versions.ended_at < new_versions.started_at then 'ended_before_started'
            when new_versions.ended_at is null then 'in_progress'
        end as left_out_reason,
        coalesce(outcome_categories.outcome_category, 'other') as outcome_category,
        outcome_categories.outcome_code is not null as is_mapped_outcome,
        {{ microseconds_between('new_versions.started_at', 'new_versions.ended_at') }} as duration_us,
        {{ bucket_start('new_versions.started_at') }} as bucket_start
    from new_versions
    left join outcome_categories
        on new_versions.outcome_code = outcome_categories.outcome_code
)

select
    judged.call_id,
    judged.organization_id,
    judged.agent_id,
    judged.started_at,
    judged.ended_at,
    judged.bucket_start,
    judged.left_out_reason,
    judged.left_out_reason is null
    or judged.left_out_reason = 'in_progress' as is_valid,
    judged.ended_at is not null as is_ended,
    judged.left_out_reason is null as is_counted,
    judged.duration_us,
    judged.outcome_code,
    judged.outcome_category,
    judged.is_mapped_outcome,
    judged.sentiment,
    judged.sentiment is not null as has_sentiment,
    coalesce(judged.sentiment = 'positive', false) as is_positive,
    judged.user_corrections,
    judged.escalation_reason,
    judged.transferred_at,
    case
        when judged.transferred_at between judged.started_at and judged.ended_at
            then {{ microseconds_between('judged.started_at', 'judged.transferred_at') }}
        else judged.duration_us
    end as escalation_us,
    judged.updated_at,
    previous_versions.organization_id as prev_organization_id,
    previous_versions.bucket_start as prev_bucket_start,
    previous_versions.is_counted as prev_is_counted,
    {{ load_time() }} as _loaded_at
from judged
left join previous_versions
    on judged.call_id = previous_versions.call_id
