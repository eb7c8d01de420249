{#- The latest version of every call (greatest updated_at), cleaned and typed.
    Incremental (arrival-based): a run re-reads the raw versions whose updated_at is at most
    `lookback_days` older than the newest version loaded, and rewrites only the calls whose
    latest version is newer than the one loaded. Rows without an id or updated_at are left out
    here and counted in dq_left_out_rows. -#}
{{
    config(
        materialized='incremental',
        unique_key='call_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with source_rows as (
    select
        id,
        organization_id,
        agent_id,
        started_at,
        ended_at,
        outcome,
        transferred_at,
        sentiment,
        user_corrections,
        escalation_reason,
        updated_at,
        filename
    from {{ source('platform', 'calls') }}
    where
        id is not null
        and updated_at is not null
    {%- if is_incremental() %}
        and updated_at >= {{ calls_reload_since() }}  -- noqa: LT02
    {%- endif %}
),

-- Rows sharing id and updated_at are identical copies, so any one of them is the version.
latest_versions as (
    select *
    from source_rows
    qualify row_number() over (partition by id order by updated_at desc, filename desc) = 1
),

{% if is_incremental() -%}
loaded_versions as (
    select
        call_id,
        updated_at
    from {{ this }}
),

new_versions as (
    select latest_versions.*
    from latest_versions
    left join loaded_versions
        on latest_versions.id = loaded_versions.call_id
    where
        loaded_versions.call_id is null
        or latest_versions.updated_at > loaded_versions.updated_at
),
{%- else -%}
new_versions as (
    select * from latest_versions
),
{%- endif %}

renamed as (
    select
        cast(id as varchar) as call_id,
        cast(organization_id as varchar) as organization_id,
        cast(agent_id as varchar) as agent_id,
        cast(started_at as timestamptz) as started_at,
        cast(ended_at as timestamptz) as ended_at,
        {{ clean_code('outcome') }} as outcome_code,
        cast(transferred_at as timestamptz) as transferred_at,
        {{ clean_code('sentiment') }} as sentiment,
        cast(user_corrections as bigint) as user_corrections,
        {{ normalise_reason('escalation_reason') }} as escalation_reason,
        cast(updated_at as timestamptz) as updated_at,
        {{ raw_relative_path('filename', 'calls') }} as _source_file,
        {{ load_time() }} as _loaded_at
    from new_versions
)

select
    call_id,
    organization_id,
    agent_id,
    started_at,
    ended_at,
    outcome_code,
    transferred_at,
    sentiment,
    user_corrections,
    escalation_reason,
    updated_at,
    _source_file,
    _loaded_at
from renamed
