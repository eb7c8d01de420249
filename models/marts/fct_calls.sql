{#- One row per counted call (latest version, valid, ended) with its additive parts.
    Incremental: every (organization, bucket) touched since the last load is rebuilt whole
    (replace_buckets strategy, macros/touched_buckets.sql). -#}
{{ config(**incremental_config('buckets', unique_key=['organization_id', 'bucket_start'])) }}
-- depends_on: {{ ref('int_touched_buckets') }}

with counted_calls as (
    {{ rows_to_rebuild(ref('int_calls'), 'is_counted') }}
),

call_telemetry as (
    select *
    from {{ ref('int_call_telemetry') }}
),

calls_with_telemetry as (
    select
        counted_calls.call_id,
        counted_calls.organization_id,
        counted_calls.agent_id,
        counted_calls.started_at,
        counted_calls.ended_at,
        counted_calls.bucket_start,
        counted_calls.duration_us,
        counted_calls.outcome_code,
        counted_calls.outcome_category,
        cast(counted_calls.outcome_category = 'resolved' as integer) as is_resolved,
        cast(counted_calls.outcome_category = 'transferred' as integer) as is_transferred,
        cast(counted_calls.outcome_category = 'abandoned' as integer) as is_abandoned,
        cast(counted_calls.outcome_category = 'other' as integer) as is_other,
        cast(counted_calls.outcome_category = 'transferred' as integer) as is_escalated,
        cast(counted_calls.has_sentiment as integer) as has_sentiment,
        cast(counted_calls.is_positive as integer) as is_positive,
        cast(counted_calls.user_corrections is not null as integer) as has_corrections_data,
        cast(coalesce(counted_calls.user_corrections = 0, false) as integer) as has_zero_corrections,
        counted_calls.escalation_reason,
        counted_calls.escalation_us,
        coalesce(call_telemetry.latency_sample_count, 0) as latency_sample_count,
        coalesce(call_telemetry.latency_ms_sum, 0) as latency_ms_sum,
        coalesce(call_telemetry.latency_bins, {{ empty_list('integer') }}) as latency_bins,
        coalesce(call_telemetry.token_sample_count, 0) as token_sample_count,
        coalesce(call_telemetry.token_ratio_sum, 0) as token_ratio_sum,
        coalesce(call_telemetry.confidence_sample_count, 0) as confidence_sample_count,
        coalesce(call_telemetry.confidence_sum, 0) as confidence_sum,
        coalesce(call_telemetry.tool_call_count, 0) as tool_call_count,
        coalesce(call_telemetry.tool_success_count, 0) as tool_success_count,
        coalesce(call_telemetry.event_count, 0) as telemetry_event_count,
        counted_calls.updated_at
    from counted_calls
    left join call_telemetry
        on counted_calls.call_id = call_telemetry.call_id
)

select
    call_id,
    organization_id,
    agent_id,
    started_at,
    ended_at,
    bucket_start,
    duration_us,
    outcome_code,
    outcome_category,
    is_resolved,
    is_transferred,
    is_abandoned,
    is_other,
    is_escalated,
    has_sentiment,
    is_positive,
    has_corrections_data,
    has_zero_corrections,
    escalation_reason,
    escalation_us,
    latency_sample_count,
    latency_ms_sum,
    latency_bins,
    token_sample_count,
    token_ratio_sum,
    confidence_sample_count,
    confidence_sum,
    tool_call_count,
    tool_success_count,
    telemetry_event_count,
    updated_at,
    {{ load_time() }} as _loaded_at{{ spark_partition_column() }}
from calls_with_telemetry
-- stored in organization and time order: a range of one organization reads few row groups
{{ storage_order(['organization_id', 'bucket_start']) }}
