{#- Per-call telemetry parts: one row per call id named by at least one event (with an
    event_id), whether or not the call arrived. Each distinct event counts once, by the rules of
    metrics.md "Valid telemetry events of a call".
    Incremental: a run recomputes the calls that received an event (or a copy) in this run. -#}
{{ config(**incremental_config('keys', unique_key='call_id')) }}

{%- if is_incremental() %}
{#- Read first, so that a night without a new event skips the scan of the staged events. -#}
{%- set watermark = loaded_watermark() %}
{%- set touched_count = rows_loaded_since(ref('stg_telemetry__events'), watermark) %}
{%- endif %}

with events as (
    select
        call_id,
        event_type,
        is_payload_json,
        ttft_ms,
        cached_tokens,
        total_tokens,
        confidence,
        tool_status,
        delivered_copies
    from {{ ref('stg_telemetry__events') }}
    where
        event_id is not null
        and call_id is not null
    {%- if is_incremental() %}
    and {{ 'true' if touched_count > 0 else 'false' }}
    and call_id in (
        select touched.call_id
        from {{ ref('stg_telemetry__events') }} as touched
        where touched._loaded_at > {{ watermark }}
    )
    {%- endif %}
),

judged as (
    select
        call_id,
        event_type,
        is_payload_json,
        delivered_copies,
        ttft_ms,
        confidence,
        tool_status,
        event_type = 'llm' and ttft_ms >= 0 as is_latency_sample,
        event_type = 'llm'
        and total_tokens > 0
        and cached_tokens >= 0
        and cached_tokens <= total_tokens as is_token_sample,
        {{ divide('cached_tokens', 'total_tokens') }} as token_ratio,
        event_type = 'stt' and confidence between 0 and 1 as is_confidence_sample,
        event_type = 'tool' and tool_status in ('success', 'error') as is_tool_call
    from events
)

select
    call_id,
    count(*) filter (where event_type in ('llm', 'stt', 'tool')) as event_count,
    count(*) filter (where event_type = 'llm') as llm_event_count,
    count(*) filter (where event_type = 'stt') as stt_event_count,
    count(*) filter (where event_type = 'tool') as tool_event_count,
    count(*) filter (
        where event_type is null or event_type not in ('llm', 'stt', 'tool')
    ) as unknown_type_event_count,
    count(*) filter (
        where event_type in ('llm', 'stt', 'tool') and not is_payload_json
    ) as malformed_payload_count,
    cast(sum(delivered_copies - 1) as bigint) as duplicate_copy_count,
    count(*) filter (where is_latency_sample) as latency_sample_count,
    coalesce({{ ordered_sum('ttft_ms', where='is_latency_sample') }}, 0) as latency_ms_sum,
    {{ ordered_list(latency_sketch_bin('ttft_ms'), 'ttft_ms', 'is_latency_sample') }} as latency_bins,
    count(*) filter (where is_token_sample) as token_sample_count,
    coalesce({{ ordered_sum('token_ratio', where='is_token_sample') }}, 0) as token_ratio_sum,
    count(*) filter (where is_confidence_sample) as confidence_sample_count,
    coalesce({{ ordered_sum('confidence', where='is_confidence_sample') }}, 0) as confidence_sum,
    count(*) filter (where is_tool_call) as tool_call_count,
    count(*) filter (where is_tool_call and tool_status = 'success') as tool_success_count,
    {{ load_time() }} as _loaded_at
from judged
group by call_id
