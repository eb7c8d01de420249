{#- The latest version of every call (greatest updated_at): one row per call id.
    Incremental (arrival-based): a run takes the versions stg_platform__call_versions loaded
    since this model's last load (from whatever files arrived, whatever their updated_at) and
    rewrites each call they name with the newer of the version held and the one that arrived.
    An older version (a re-sent extract) changes nothing but _loaded_at: dq_left_out_rows
    counts it as superseded. Rows without an id or updated_at are left out (counted in dq_left_out_rows). -#}
{{ config(**incremental_config('keys', unique_key='call_id')) }}

with arrived_versions as (
    select
        {{- call_version_columns() }},
        _source_file
    from {{ ref('stg_platform__call_versions') }}
    where
        call_id is not null
        and updated_at is not null
    {%- if is_incremental() %}
        and _loaded_at > {{ loaded_watermark() }}  -- noqa: LT02
    {%- endif %}
),

-- Rows sharing id and updated_at are identical copies, so any one of them is the version.
latest_arrived as (
    select *
    from arrived_versions
    qualify row_number() over (partition by call_id order by updated_at desc, _source_file desc) = 1
),

{% if is_incremental() -%}
-- Each call that got a version is rewritten with the newer of the version held and the one that
-- arrived (the held one on a tie: copies are identical). An older version changes nothing but
-- the row's _loaded_at, so every arrival moves this model's watermark on.
held_versions as (
    select
        {{- call_version_columns() }},
        _source_file
    from {{ this }}
    where call_id in (select latest_arrived.call_id from latest_arrived)
),

new_versions as (
    select *
    from (
        select
            *,
            true as is_held
        from held_versions
        union all
        select
            *,
            false as is_held
        from latest_arrived
    ) as candidates
    qualify row_number() over (partition by call_id order by updated_at desc, is_held desc) = 1
)
{%- else -%}
new_versions as (
    select * from latest_arrived
)
{%- endif %}

select
    {{- call_version_columns() }},
    _source_file,
    {{ load_time() }} as _loaded_at
from new_versions
