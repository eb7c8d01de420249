{#- Every raw row left out of the metrics, counted by source table and reason, so that
      raw call rows  = counted calls + left-out call rows, and
      raw event rows = events attached to counted calls + row-level left-out event rows.
    Reasons starting `invalid_` are metric-level: the row still counts, but one metric skips
    it (an llm event without a usable ttft_ms, ...); they are not part of the reconciliation.
    Every known reason is listed, with 0 when nothing was left out for it. -#}
-- Rows without an id or updated_at are not versions: each is left out by itself.
with unversioned_call_rows as (
    select
        case when call_id is null then 'null_call_id' else 'null_updated_at' end as reason,
        count(*) as row_count
    from {{ ref('stg_platform__call_versions') }}
    where not is_file_marker and (call_id is null or updated_at is null)
    group by reason
),

int_calls as (
    select
        call_id,
        updated_at,
        is_counted,
        left_out_reason
    from {{ ref('int_calls') }}
),

-- Per call: the version held takes the call's reason, every other version is superseded, every
-- other row a duplicate copy. A delivered version newer than the one held (or a call not held
-- at all) is a version not loaded: a defect that fails the build
-- (assert_every_raw_call_version_loaded).
calls_judged as (
    select
        int_call_versions.version_count,
        int_call_versions.row_count,
        case
            when int_calls.call_id is null then 'version_not_loaded'
            when int_call_versions.newest_updated_at > int_calls.updated_at
                then 'version_not_loaded'
            when int_calls.is_counted then 'counted'
            else int_calls.left_out_reason
        end as held_reason,
        int_calls.call_id is null as is_missing
    from {{ ref('int_call_versions') }} as int_call_versions
    left join int_calls
        on int_call_versions.call_id = int_calls.call_id
),

call_reasons as (
    select
        reason,
        row_count
    from unversioned_call_rows
    union all
    select
        held_reason as reason,
        case when is_missing then version_count else 1 end as row_count
    from calls_judged
    union all
    select
        'superseded_version' as reason,
        version_count - 1 as row_count
    from calls_judged
    where not is_missing
    union all
    select
        'duplicate_copy' as reason,
        row_count - version_count as row_count
    from calls_judged
),

-- Events without a call id never reach int_call_telemetry: count them here; the duplicate
-- copies of events with a call id are counted per call in int_call_telemetry.
events_without_call as (
    select
        event_id,
        event_type,
        delivered_copies
    from {{ ref('int_events_without_call') }}
),

event_row_reasons as (
    select
        case
            when event_id is null then 'null_event_id'
            when event_type is null or event_type not in ('llm', 'stt', 'tool') then 'unknown_event_type'
            else 'null_call_id'
        end as reason,
        case when event_id is null then delivered_copies else 1 end as row_count
    from events_without_call
    union all
    select
        'duplicate_copy' as reason,
        delivered_copies - 1 as row_count
    from events_without_call
    where event_id is not null
    union all
    select
        'duplicate_copy' as reason,
        duplicate_copy_count as row_count
    from {{ ref('int_call_telemetry') }}
),

call_telemetry as (
    select
        int_call_telemetry.*,
        int_calls.call_id is not null as call_arrived,
        coalesce(int_calls.is_counted, false) as call_counted
    from {{ ref('int_call_telemetry') }} as int_call_telemetry
    left join int_calls
        on int_call_telemetry.call_id = int_calls.call_id
),

event_call_reasons as (
    select
        'unknown_event_type' as reason,
        unknown_type_event_count as row_count
    from call_telemetry
    union all
    select
        case
            when not call_arrived then 'orphan_event'
            when not call_counted then 'call_not_counted'
            else 'attached'
        end as reason,
        event_count as row_count
    from call_telemetry
),

-- Metric-level exclusions: events of counted calls skipped by one metric only.
event_metric_reasons as (
    select
        {{ unnest_pairs([
            ["'invalid_ttft_ms'", 'llm_event_count - latency_sample_count'],
            ["'invalid_token_counts'", 'llm_event_count - token_sample_count'],
            ["'invalid_confidence'", 'stt_event_count - confidence_sample_count'],
            ["'invalid_tool_status'", 'tool_event_count - tool_call_count'],
            ["'invalid_payload_json'", 'malformed_payload_count'],
        ], 'reason', 'row_count') }}
    from call_telemetry
    where call_counted
),

small_table_rows as (
    {%- set small_tables = [
        ('resellers', 'reseller_id'), ('organizations', 'organization_id'), ('agents', 'agent_id')
    ] %}
    {%- for table, key in small_tables %}
    select
        '{{ table }}' as source_table,
        count(*) filter (where id is null) as null_id_rows,
        count(*) filter (where id is not null) - count(distinct id) as duplicate_id_rows
    from {{ source('platform', table) }}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
),

small_table_reasons as (
    select
        source_table,
        'null_id' as reason,
        null_id_rows as row_count
    from small_table_rows
    union all
    select
        source_table,
        'duplicate_id' as reason,
        duplicate_id_rows as row_count
    from small_table_rows
    union all
    select
        'agents' as source_table,
        'invalid_status_reported_inactive' as reason,
        count(*) filter (where not is_known_status) as row_count
    from {{ ref('stg_platform__agents') }}
),

known_reasons as (
    select
        source_table,
        reason
    from (
        values
        ('calls', 'null_call_id'),
        ('calls', 'null_updated_at'),
        ('calls', 'duplicate_copy'),
        ('calls', 'superseded_version'),
        ('calls', 'version_not_loaded'),
        ('calls', 'null_organization_id'),
        ('calls', 'null_started_at'),
        ('calls', 'ended_before_started'),
        ('calls', 'in_progress'),
        ('telemetry_events', 'duplicate_copy'),
        ('telemetry_events', 'null_event_id'),
        ('telemetry_events', 'unknown_event_type'),
        ('telemetry_events', 'null_call_id'),
        ('telemetry_events', 'orphan_event'),
        ('telemetry_events', 'call_not_counted'),
        ('telemetry_events', 'invalid_ttft_ms'),
        ('telemetry_events', 'invalid_token_counts'),
        ('telemetry_events', 'invalid_confidence'),
        ('telemetry_events', 'invalid_tool_status'),
        ('telemetry_events', 'invalid_payload_json'),
        ('resellers', 'null_id'),
        ('resellers', 'duplicate_id'),
        ('organizations', 'null_id'),
        ('organizations', 'duplicate_id'),
        ('agents', 'null_id'),
        ('agents', 'duplicate_id'),
        ('agents', 'invalid_status_reported_inactive')
    ) as known (source_table, reason)  -- noqa: AL05
),

all_reasons as (
    select
        'calls' as source_table,
        reason,
        row_count
    from call_reasons
    where reason != 'counted'
    union all
    select
        'telemetry_events' as source_table,
        reason,
        row_count
    from event_row_reasons
    union all
    select
        'telemetry_events' as source_table,
        reason,
        row_count
    from event_call_reasons
    where reason != 'attached'
    union all
    select
        'telemetry_events' as source_table,
        reason,
        row_count
    from event_metric_reasons
    union all
    select
        source_table,
        reason,
        row_count
    from small_table_reasons
),

reason_totals as (
    select
        source_table,
        reason,
        sum(row_count) as row_count
    from all_reasons
    group by source_table, reason
),

-- A full join: a reason missing from the list above still shows.
reasons_with_totals as (
    select
        coalesce(known_reasons.source_table, reason_totals.source_table) as source_table,
        coalesce(known_reasons.reason, reason_totals.reason) as reason,
        coalesce(reason_totals.row_count, 0) as row_count
    from known_reasons
    full outer join reason_totals
        on
            known_reasons.source_table = reason_totals.source_table
            and known_reasons.reason = reason_totals.reason
)

select
    source_table,
    reason,
    left(reason, 8) != 'invalid_' as is_row_level,
    cast(row_count as bigint) as row_count
from reasons_with_totals
