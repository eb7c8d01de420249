{#- Per-call telemetry parts: one row per call id named by at least one event (with an
    event_id), whether or not the call arrived. Each distinct event counts once, by the rules of
    metrics.md "Valid telemetry events of a call".
    Besides the sums, each row keeps the sorted values they add up (latency_values,
    token_ratio_values, confidence_values): an ordered sum over the same values is the same
    double, so new values can be merged in without reading a call's older events.
    Incremental: a run reads only the staged rows written since its last load (events delivered
    for the first time, and new copies of events loaded before, which add only to
    duplicate_copy_count) and adds them to the stored rows of the calls they name; it never
    scans the staged event history. -#}
{{ config(**incremental_config('keys', unique_key='call_id')) }}

{#- Incremental: the rows written since this model's last load. Rows are appended in load order,
    so a literal watermark lets DuckDB skip the older row groups. -#}
{%- set read_since = '_loaded_at > ' ~ loaded_watermark() if is_incremental() else 'true' %}

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
        delivered_copies,
        _previous_copies
    from {{ ref('stg_telemetry__events') }}
    where
        event_id is not null
        and call_id is not null
        and {{ read_since }}
),

judged as (
    select
        call_id,
        event_type,
        is_payload_json,
        -- the copies this load added beyond the first: all but one of a new event's, every
        -- copy of an event loaded before
        delivered_copies - greatest(_previous_copies, 1) as added_duplicates,
        -- a new copy of an event loaded before changes nothing but the duplicates
        _previous_copies = 0 as is_new_event,
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
),

-- The counts of the events read, per call: one aggregate of plain counts, no list state.
read_counts as (
    select
        call_id,
        count(*) filter (where is_new_event and event_type in ('llm', 'stt', 'tool')) as event_count,
        count(*) filter (where is_new_event and event_type = 'llm') as llm_event_count,
        count(*) filter (where is_new_event and event_type = 'stt') as stt_event_count,
        count(*) filter (where is_new_event and event_type = 'tool') as tool_event_count,
        count(*) filter (
            where is_new_event and (event_type is null or event_type not in ('llm', 'stt', 'tool'))
        ) as unknown_type_event_count,
        count(*) filter (
            where is_new_event and event_type in ('llm', 'stt', 'tool') and not is_payload_json
        ) as malformed_payload_count,
        cast(sum(added_duplicates) as bigint) as duplicate_copy_count,
        count(*) filter (where is_new_event and is_latency_sample) as latency_sample_count,
        count(*) filter (where is_new_event and is_token_sample) as token_sample_count,
        count(*) filter (where is_new_event and is_confidence_sample) as confidence_sample_count,
        count(*) filter (where is_new_event and is_tool_call) as tool_call_count,
        count(*) filter (
            where is_new_event and is_tool_call and tool_status = 'success'
        ) as tool_success_count
    from judged
    group by call_id
),

-- The sorted sample values, one aggregate per kind over that kind's rows only (a fraction of
-- the events), joined to the counts: one small list state at a time instead of three per call
-- in one table, so a full build of 240M events (10M calls) fits a 10GB memory limit.
{%- set samples = {
    'latency': ('ttft_ms', 'is_latency_sample'),
    'token_ratio': ('token_ratio', 'is_token_sample'),
    'confidence': ('confidence', 'is_confidence_sample'),
} %}
{%- for kind, (value, is_sample) in samples.items() %}
{{ kind }}_lists as (
    select
        call_id,
        {{ sorted_values(value) }} as {{ kind }}_values
    from judged
    where is_new_event and {{ is_sample }}
    group by call_id
),
{% endfor %}
-- The parts of the events read, per call.
read_parts as (
    select
        read_counts.*,
        coalesce(latency_lists.latency_values, {{ empty_list('double') }}) as latency_values,
        coalesce(token_ratio_lists.token_ratio_values, {{ empty_list('double') }}) as token_ratio_values,
        coalesce(confidence_lists.confidence_values, {{ empty_list('double') }}) as confidence_values
    from read_counts
    left join latency_lists
        on read_counts.call_id = latency_lists.call_id
    left join token_ratio_lists
        on read_counts.call_id = token_ratio_lists.call_id
    left join confidence_lists
        on read_counts.call_id = confidence_lists.call_id
),

{% if is_incremental() -%}
-- The stored parts of the calls read, added to: counts add up, sorted values merge (the bins
-- are derived from the merged latency values below).
stored_parts as (
    select *
    from {{ this }}
    where call_id in (select read_parts.call_id from read_parts)
),

call_parts as (
    select
        read_parts.call_id,
        read_parts.event_count + coalesce(stored_parts.event_count, 0) as event_count,
        read_parts.llm_event_count + coalesce(stored_parts.llm_event_count, 0) as llm_event_count,
        read_parts.stt_event_count + coalesce(stored_parts.stt_event_count, 0) as stt_event_count,
        read_parts.tool_event_count + coalesce(stored_parts.tool_event_count, 0) as tool_event_count,
        read_parts.unknown_type_event_count
        + coalesce(stored_parts.unknown_type_event_count, 0) as unknown_type_event_count,
        read_parts.malformed_payload_count
        + coalesce(stored_parts.malformed_payload_count, 0) as malformed_payload_count,
        read_parts.duplicate_copy_count
        + coalesce(stored_parts.duplicate_copy_count, 0) as duplicate_copy_count,
        read_parts.latency_sample_count
        + coalesce(stored_parts.latency_sample_count, 0) as latency_sample_count,
        {{ merge_sorted('stored_parts.latency_values', 'read_parts.latency_values') }} as latency_values,
        read_parts.token_sample_count
        + coalesce(stored_parts.token_sample_count, 0) as token_sample_count,
        {{ merge_sorted('stored_parts.token_ratio_values', 'read_parts.token_ratio_values') }}
            as token_ratio_values,
        read_parts.confidence_sample_count
        + coalesce(stored_parts.confidence_sample_count, 0) as confidence_sample_count,
        {{ merge_sorted('stored_parts.confidence_values', 'read_parts.confidence_values') }}
            as confidence_values,
        read_parts.tool_call_count + coalesce(stored_parts.tool_call_count, 0) as tool_call_count,
        read_parts.tool_success_count
        + coalesce(stored_parts.tool_success_count, 0) as tool_success_count
    from read_parts
    left join stored_parts
        on read_parts.call_id = stored_parts.call_id
),
{%- else -%}
call_parts as (
    select * from read_parts
),
{%- endif %}

final as (
    select
        call_id,
        event_count,
        llm_event_count,
        stt_event_count,
        tool_event_count,
        unknown_type_event_count,
        malformed_payload_count,
        duplicate_copy_count,
        latency_sample_count,
        {{ sorted_values_sum('latency_values') }} as latency_ms_sum,
        -- the bins of the sorted values: ordered by ttft_ms, as the bins are monotone in it
        {{ latency_sketch_bins('latency_values') }} as latency_bins,
        token_sample_count,
        {{ sorted_values_sum('token_ratio_values') }} as token_ratio_sum,
        confidence_sample_count,
        {{ sorted_values_sum('confidence_values') }} as confidence_sum,
        tool_call_count,
        tool_success_count,
        latency_values,
        token_ratio_values,
        confidence_values
    from call_parts
)

select
    call_id,
    cast(event_count as bigint) as event_count,
    cast(llm_event_count as bigint) as llm_event_count,
    cast(stt_event_count as bigint) as stt_event_count,
    cast(tool_event_count as bigint) as tool_event_count,
    cast(unknown_type_event_count as bigint) as unknown_type_event_count,
    cast(malformed_payload_count as bigint) as malformed_payload_count,
    cast(duplicate_copy_count as bigint) as duplicate_copy_count,
    cast(latency_sample_count as bigint) as latency_sample_count,
    latency_ms_sum,
    latency_bins,
    cast(token_sample_count as bigint) as token_sample_count,
    token_ratio_sum,
    cast(confidence_sample_count as bigint) as confidence_sample_count,
    confidence_sum,
    cast(tool_call_count as bigint) as tool_call_count,
    cast(tool_success_count as bigint) as tool_success_count,
    latency_values,
    token_ratio_values,
    confidence_values,
    {{ load_time() }} as _loaded_at
from final
