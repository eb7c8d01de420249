{#- The ledger of rows left out of the metrics: what each load added to each count, by source
    table and reason. dq_left_out_rows is its sum (plus the small tables, counted whole).
    A load adds:
      - the calls it judged again: row_count - prev_row_count of the rows ledger_left_out_by_call
        wrote (a late version, late telemetry or a call arriving after its events moves counts
        from one reason to another);
      - the call rows it staged that are no version (no id or no updated_at): each is left out
        by itself and never changes;
      - the telemetry rows it staged that belong to no call (no event_id, or no call_id): a
        new copy of such an event adds only the copies it brought (_previous_copies).
    Incremental: a run appends one row per source table and reason it touched (0 when its
    changes cancel out), stamped with the run's _loaded_at; it reads only the rows those models
    wrote since the ledger's last load, never the history. -#}
{{ config(**incremental_config('keys', unique_key=['_loaded_at', 'source_table', 'reason'])) }}

{#- The rows written since the ledger's last load (every row on a full build). -#}
{%- set read_since = '_loaded_at > ' ~ loaded_watermark() if is_incremental() else 'true' %}

with call_changes as (
    select
        source_table,
        reason,
        row_count - prev_row_count as row_count
    from {{ ref('ledger_left_out_by_call') }}
    where {{ read_since }}
),

-- Rows without an id or updated_at are not versions: each is left out by itself.
unversioned_call_rows as (
    select
        'calls' as source_table,
        case when call_id is null then 'null_call_id' else 'null_updated_at' end as reason,
        1 as row_count
    from {{ ref('stg_platform__call_versions') }}
    where
        not is_file_marker
        and (call_id is null or updated_at is null)
        and {{ read_since }}
),

-- Staged telemetry rows that belong to no call: a file's marker row (its rows without an
-- event_id) and events without a call_id. delivered_copies is the event's copies so far,
-- _previous_copies what the ledger counted before (0 for an event new to this load).
events_without_call as (
    select
        event_id,
        event_type,
        delivered_copies,
        _previous_copies
    from {{ ref('stg_telemetry__events') }}
    where
        (event_id is null or call_id is null)
        and {{ read_since }}
),

event_changes as (
    select
        'telemetry_events' as source_table,
        case
            when event_id is null then 'null_event_id'
            when event_type is null or event_type not in ('llm', 'stt', 'tool') then 'unknown_event_type'
            else 'null_call_id'
        end as reason,
        case
            when event_id is null then delivered_copies - _previous_copies
            when _previous_copies = 0 then 1
            else 0
        end as row_count
    from events_without_call
    union all
    select
        'telemetry_events' as source_table,
        'duplicate_copy' as reason,
        -- copies beyond the first: all but one of a new event's, every copy of one counted before
        delivered_copies - greatest(_previous_copies, 1) as row_count
    from events_without_call
    where event_id is not null
),

changes as (
    select
        source_table,
        reason,
        row_count
    from call_changes
    union all
    select
        source_table,
        reason,
        row_count
    from unversioned_call_rows
    union all
    select
        source_table,
        reason,
        row_count
    from event_changes
)

select
    {{ load_time() }} as _loaded_at,
    source_table,
    reason,
    cast(sum(row_count) as bigint) as row_count
from changes
group by source_table, reason
