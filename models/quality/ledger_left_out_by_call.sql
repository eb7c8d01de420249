{#- What each call leaves out of the metrics, by source table and reason: one row per call and
    reason with a count that is not 0 (a call whose every row counts has no row here). A call's
    counts depend on its own rows only: its change log (int_call_versions), the version held
    (int_calls) and its telemetry parts (int_call_telemetry). So when a late version, late
    telemetry or the call itself arrives, only that call is judged again.

    Incremental: a run judges again the calls any of those three models rewrote since this
    model's last load, and keeps, beside each new count, the count the call had before
    (prev_row_count; a reason the call no longer has stays with row_count 0 until the call is
    touched again). ledger_left_out_rows adds row_count - prev_row_count of the rows written by
    a run: the change that run made, never a recount of the history. -#}
{{ config(**incremental_config('keys', unique_key='call_id')) }}

{#- Not a data dependency: this model and fct_calls both join every call to its telemetry parts
    (a few lists per call). Run side by side by dbt's two threads in a full build of 10M calls,
    both failed at once with DuckDB out of memory at a 10GB limit (one run of two); run after
    fct_calls, each has the memory to itself. -#}
-- depends_on: {{ ref('fct_calls') }}

{#- Incremental: each model read is narrowed to the touched calls. -#}
{%- set touched = '' %}
{%- if is_incremental() %}
{%- set watermark = loaded_watermark() %}
{%- set touched = '\n    where call_id in (select touched_calls.call_id from touched_calls)' %}
{%- endif %}

with
{% if is_incremental() -%}
touched_calls as {{ cte_hint('materialized') }} (
    select call_id
    from {{ ref('int_call_versions') }}
    where _loaded_at > {{ watermark }}
    union
    select call_id
    from {{ ref('int_calls') }}
    where _loaded_at > {{ watermark }}
    union
    select call_id
    from {{ ref('int_call_telemetry') }}
    where _loaded_at > {{ watermark }}
),

{% endif %}
int_call_versions as (
    select
        call_id,
        version_count,
        row_count,
        newest_updated_at
    from {{ ref('int_call_versions') }}
    {{- touched }}
),

int_calls as (
    select
        call_id,
        updated_at,
        is_counted,
        left_out_reason
    from {{ ref('int_calls') }}
    {{- touched }}
),

int_call_telemetry as (
    select
        call_id,
        event_count,
        unknown_type_event_count,
        duplicate_copy_count,
        llm_event_count,
        latency_sample_count,
        token_sample_count,
        stt_event_count,
        confidence_sample_count,
        tool_event_count,
        tool_call_count,
        malformed_payload_count
    from {{ ref('int_call_telemetry') }}
    {{- touched }}
),

-- Per call: the version held takes the call's reason, every other version is superseded, every
-- other row a duplicate copy. A delivered version newer than the one held (or a call not held
-- at all) is a version not loaded: a defect that fails the build
-- (assert_every_raw_call_version_loaded).
calls_judged as (
    select
        int_call_versions.call_id,
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
    from int_call_versions
    left join int_calls
        on int_call_versions.call_id = int_calls.call_id
),

call_reasons as (
    select
        call_id,
        held_reason as reason,
        case when is_missing then version_count else 1 end as row_count
    from calls_judged
    where held_reason != 'counted'
    union all
    select
        call_id,
        'superseded_version' as reason,
        version_count - 1 as row_count
    from calls_judged
    where not is_missing
    union all
    select
        call_id,
        'duplicate_copy' as reason,
        row_count - version_count as row_count
    from calls_judged
),

-- A call's events: the distinct events wait as orphans until the call arrives, and then count
-- (attached) or not (call_not_counted) with the call; copies beyond the first are duplicates.
call_telemetry as (
    select
        int_call_telemetry.*,
        int_calls.call_id is not null as call_arrived,
        coalesce(int_calls.is_counted, false) as call_counted
    from int_call_telemetry
    left join int_calls
        on int_call_telemetry.call_id = int_calls.call_id
),

event_reasons as (
    select
        call_id,
        {{ unnest_pairs([
            ["'duplicate_copy'", 'duplicate_copy_count'],
            ["'unknown_event_type'", 'unknown_type_event_count'],
            ["case when not call_arrived then 'orphan_event' "
                ~ "when not call_counted then 'call_not_counted' else 'attached' end",
                'event_count'],
        ], 'reason', 'row_count') }}
    from call_telemetry
),

-- Metric-level exclusions: events of counted calls skipped by one metric only.
event_metric_reasons as (
    select
        call_id,
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

judged as (
    select
        call_id,
        'calls' as source_table,
        reason,
        row_count
    from call_reasons
    union all
    select
        call_id,
        'telemetry_events' as source_table,
        reason,
        row_count
    from event_reasons
    where reason != 'attached'
    union all
    select
        call_id,
        'telemetry_events' as source_table,
        reason,
        row_count
    from event_metric_reasons
),

-- A call has each (source_table, reason) once in judged: duplicate_copy comes from both sides,
-- under different source tables (the primary key test holds this). So the reasons with a count
-- are a filter, not a group by: grouping every call's reasons by their text keys ran DuckDB out of memory
-- at a 10GB limit in a 10M-call full build; filtered, the model takes 6 s and 7 GiB there.
call_counts as (
    select
        call_id,
        source_table,
        reason,
        row_count
    from judged
    where row_count != 0
),

{% if is_incremental() -%}
-- What the touched calls counted before this run.
stored_counts as (
    select
        call_id,
        source_table,
        reason,
        row_count
    from {{ this }}
    {{- touched }}
),

counts_and_before as (
    select
        coalesce(call_counts.call_id, stored_counts.call_id) as call_id,
        coalesce(call_counts.source_table, stored_counts.source_table) as source_table,
        coalesce(call_counts.reason, stored_counts.reason) as reason,
        coalesce(call_counts.row_count, 0) as row_count,
        coalesce(stored_counts.row_count, 0) as prev_row_count
    from call_counts
    full outer join stored_counts
        on
            call_counts.call_id = stored_counts.call_id
            and call_counts.source_table = stored_counts.source_table
            and call_counts.reason = stored_counts.reason
    where coalesce(call_counts.row_count, 0) != 0 or coalesce(stored_counts.row_count, 0) != 0
)
{%- else -%}
counts_and_before as (
    select
        call_id,
        source_table,
        reason,
        row_count,
        0 as prev_row_count
    from call_counts
)
{%- endif %}

select
    call_id,
    source_table,
    reason,
    cast(row_count as bigint) as row_count,
    cast(prev_row_count as bigint) as prev_row_count,
    {{ load_time() }} as _loaded_at
from counts_and_before
