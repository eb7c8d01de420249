{#- The staged telemetry rows that belong to no call: events without a call_id and the files'
    marker rows (which count the rows without an event_id). dq_left_out_rows counts them here
    instead of scanning every staged event each night.
    Incremental: a run takes the staged rows loaded (or re-delivered) since its last load. -#}
{{ config(**incremental_config('keys', unique_key='event_key')) }}

select
    event_key,
    event_id,
    event_type,
    delivered_copies,
    {{ load_time() }} as _loaded_at
from {{ ref('stg_telemetry__events') }}
where
    (event_id is null or call_id is null)
    {%- if is_incremental() %}
    and _loaded_at > {{ loaded_watermark() }}
    {%- endif %}
