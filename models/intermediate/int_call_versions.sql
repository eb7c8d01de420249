{#- How each call's change log stands: one row per call id with the number of distinct versions
    and of rows (copies) delivered for it, and its newest version. dq_left_out_rows counts
    superseded versions and duplicate copies from here, per call, instead of grouping the whole
    change log every night.
    Incremental: a run recounts the calls that got a row since its last load. -#}
{{ config(**incremental_config('keys', unique_key='call_id')) }}

{%- if is_incremental() %}
{%- set watermark = loaded_watermark() %}
{%- set arrived_count = rows_loaded_since(ref('stg_platform__call_versions'), watermark) %}
{%- endif %}

with versions as (
    select
        call_id,
        updated_at
    from {{ ref('stg_platform__call_versions') }}
    where
        call_id is not null
        and updated_at is not null
    {%- if is_incremental() %}
    and {{ 'true' if arrived_count > 0 else 'false' }}
    and call_id in (
        select arrived.call_id
        from {{ ref('stg_platform__call_versions') }} as arrived
        where arrived._loaded_at > {{ watermark }}
    )
    {%- endif %}
)

select
    call_id,
    count(distinct updated_at) as version_count,
    count(*) as row_count,
    max(updated_at) as newest_updated_at,
    {{ load_time() }} as _loaded_at
from versions
group by call_id
