{#- One row per distinct telemetry event (copies counted once), with its JSON payload parsed
    once into typed fields. A field holds a value only when the payload is valid JSON and the
    field is a JSON number (or, for the tool status, a JSON string); anything else is null,
    never an error.

    Rows without an event_id cannot be told apart: each loaded file gets one marker row
    (event_key 'file:<path>', event_id null) whose delivered_copies counts that file's rows
    without an event_id, and which remembers that the file was loaded.

    Incremental (arrival-based): a run reads only the files not loaded yet; a new copy of an
    event already loaded adds to its delivered_copies (and _previous_copies keeps how many it
    had, so int_call_telemetry adds only what changed). Re-delivery is found through the
    stored 64-bit hash of the key (event_hash), never by scanning the keys' text: the
    strategy replace_hashed_keys (macros/incremental.sql) deletes the rows replaced the same
    way. -#}
{{ config(**incremental_config('keys', unique_key='event_key', key_hash='event_hash')) }}

{%- set files_to_load = telemetry_files_to_load() if is_incremental() else "''" %}
{#- A night without a new file reads nothing: the constant false filter below lets DuckDB drop
    every scan of the plan. #}
{%- set nothing_new = is_incremental() and files_to_load == "''" %}
{#- The payload fields read (raw-sources.md, "Payload shapes"), parsed once per event. #}
{%- set payload_fields = ['ttft_ms', 'cached_tokens', 'total_tokens', 'confidence', 'status'] %}

with source_rows as {{ cte_hint('not materialized') }} (
    select
        cast(event_id as string) as event_id,
        cast(call_id as string) as call_id,
        event_type,
        cast(occurred_at as {{ type_timestamptz() }}) as occurred_at,
        payload,
        {{ raw_relative_path('filename', 'telemetry_events') }} as source_file
    from {{ source('telemetry', 'telemetry_events') }}
    {%- if is_incremental() %}
    where {{ raw_relative_path('filename', 'telemetry_events') }} in ({{ files_to_load }})
    {%- endif %}
),

files_read as (
    select {{ raw_relative_path('file', 'telemetry_events') }} as source_file
    from {{ raw_files('telemetry_events') }}
    {%- if is_incremental() %}
    where {{ raw_relative_path('file', 'telemetry_events') }} in ({{ files_to_load }})
    {%- endif %}
),

-- Hashes of the event ids delivered more than once (plus the odd hash collision). Only rows
-- with these hashes, and rows without an event_id, need grouping: every other row is its own
-- event, which keeps the costly wide aggregate down to a few percent of the rows.
repeated_hashes as {{ cte_hint('materialized') }} (
    select hash(event_id) as event_hash
    from source_rows
    where event_id is not null
    group by event_hash
    having count(*) > 1
),

flagged_rows as {{ cte_hint('not materialized') }} (
    select
        *,
        event_id is null
        or hash(event_id) in (select repeated_hashes.event_hash from repeated_hashes) as may_repeat
    from source_rows
),

events_delivered_once as (
    select
        event_id as event_key,
        event_id,
        call_id,
        event_type,
        occurred_at,
        payload,
        1 as delivered_copies,
        source_file as _source_file
    from flagged_rows
    where not may_repeat
),

-- Copies are identical, so any copy stands for the event; a file's rows without an event_id
-- collapse into that file's marker row.
events_grouped as (
    select
        coalesce(event_id, 'file:' || source_file) as event_key,
        any_value(event_id) as event_id,
        any_value(call_id) as call_id,
        any_value(event_type) as event_type,
        any_value(occurred_at) as occurred_at,
        any_value(payload) as payload,
        count(*) as delivered_copies,
        min(source_file) as _source_file
    from flagged_rows
    where may_repeat
    group by event_key
),

events_unparsed as (
    select * from events_delivered_once
    union all
    select * from events_grouped
),

parsed as (
    select
        event_key,
        event_id,
        case when event_id is not null then call_id end as call_id,
        case when event_id is not null then {{ clean_code('event_type') }} end as event_type,
        occurred_at,
        event_id is not null and coalesce({{ is_json('payload') }}, false) as is_payload_json,
        case
            when event_id is not null and {{ is_json('payload') }}
                then {{ json_fields('payload', payload_fields) }}
        end as payload_fields,
        delivered_copies,
        _source_file
    from events_unparsed
),

distinct_events as (
    select
        event_key,
        event_id,
        call_id,
        event_type,
        occurred_at,
        is_payload_json,
        {{ json_number(json_field('payload_fields', payload_fields, 'ttft_ms')) }} as ttft_ms,
        {{ json_number(json_field('payload_fields', payload_fields, 'cached_tokens')) }} as cached_tokens,
        {{ json_number(json_field('payload_fields', payload_fields, 'total_tokens')) }} as total_tokens,
        {{ json_number(json_field('payload_fields', payload_fields, 'confidence')) }} as confidence,
        lower({{ json_string(json_field('payload_fields', payload_fields, 'status')) }}) as tool_status,
        delivered_copies,
        _source_file
    from parsed
),

-- Every file read gets a marker row, even one without a row lacking an event_id.
file_markers as (
    select
        'file:' || files_read.source_file as event_key,
        cast(null as string) as event_id,
        cast(null as string) as call_id,
        cast(null as string) as event_type,
        cast(null as {{ type_timestamptz() }}) as occurred_at,
        false as is_payload_json,
        cast(null as double) as ttft_ms,
        cast(null as double) as cached_tokens,
        cast(null as double) as total_tokens,
        cast(null as double) as confidence,
        cast(null as string) as tool_status,
        0 as delivered_copies,
        0 as _previous_copies,
        files_read.source_file as _source_file
    from files_read
    anti join events_grouped
        on 'file:' || files_read.source_file = events_grouped.event_key
),

{% if is_incremental() -%}
-- Events delivered again: the stored rows whose key hash is a new event's (8 bytes a row read,
-- and only the few matching rows' other columns); the join below confirms them on the key.
loaded_events as {{ cte_hint('materialized') }} (
    select
        event_key,
        delivered_copies,
        _source_file
    from {{ this }}
    where event_hash in (
            select {{ key_hash('source_rows.event_id') }}
            from source_rows
            where source_rows.event_id is not null
        )
),

-- An event delivered again keeps the file that first delivered it and adds the new copies
-- (copies are identical: the other fields are the same in every copy).
new_events as (
    select
        distinct_events.event_key,
        distinct_events.event_id,
        distinct_events.call_id,
        distinct_events.event_type,
        distinct_events.occurred_at,
        distinct_events.is_payload_json,
        distinct_events.ttft_ms,
        distinct_events.cached_tokens,
        distinct_events.total_tokens,
        distinct_events.confidence,
        distinct_events.tool_status,
        distinct_events.delivered_copies + coalesce(loaded_events.delivered_copies, 0) as delivered_copies,
        coalesce(loaded_events.delivered_copies, 0) as _previous_copies,
        coalesce(loaded_events._source_file, distinct_events._source_file) as _source_file
    from distinct_events
    left join loaded_events
        on distinct_events.event_key = loaded_events.event_key
),
{%- else -%}
new_events as (
    select
        event_key,
        event_id,
        call_id,
        event_type,
        occurred_at,
        is_payload_json,
        ttft_ms,
        cached_tokens,
        total_tokens,
        confidence,
        tool_status,
        delivered_copies,
        0 as _previous_copies,
        _source_file
    from distinct_events
),
{%- endif %}

all_rows as (
    select * from new_events
    union all
    select * from file_markers
)

select
    event_key,
    {{ key_hash('event_key') }} as event_hash,
    event_id,
    call_id,
    event_type,
    occurred_at,
    is_payload_json,
    ttft_ms,
    cached_tokens,
    total_tokens,
    confidence,
    tool_status,
    cast(delivered_copies as bigint) as delivered_copies,
    cast(_previous_copies as bigint) as _previous_copies,
    _source_file,
    {{ load_time() }} as _loaded_at
from all_rows
{%- if nothing_new %}
where false
{%- endif %}
