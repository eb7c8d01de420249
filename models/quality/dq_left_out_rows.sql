{#- Every raw row left out of the metrics, counted by source table and reason, so that
      raw call rows  = counted calls + left-out call rows, and
      raw event rows = events attached to counted calls + row-level left-out event rows.
    Reasons starting `invalid_` are metric-level: the row still counts, but one metric skips
    it (an llm event without a usable ttft_ms, ...); they are not part of the reconciliation.
    Every known reason is listed, with 0 when nothing was left out for it.
    Calls and telemetry events are the sum of the ledger (ledger_left_out_rows: what each load
    added, by reason), so a night reads the ledger's few rows, not the history; the small
    tables (resellers, organizations, agents: whole snapshots) are counted whole. -#}
with small_table_rows as (
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
        source_table,
        reason,
        row_count
    from {{ ref('ledger_left_out_rows') }}
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
