{#- The calls change log as delivered: one row per raw calls row (every version, every copy),
    cleaned and typed, with the file it came from. A file that held no row gets one marker row
    (is_file_marker), so that every loaded file is remembered.

    Incremental (arrival-based, by file): a run reads only the calls files not loaded yet,
    whatever the updated_at of their rows, and appends them. Which version is the call is
    decided downstream (stg_platform__calls); what was left out is counted in dq_left_out_rows. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{%- set files_to_load = call_files_to_load() if is_incremental() else none %}

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
        {{ raw_relative_path('filename', 'calls') }} as source_file
    from {{ source('platform', 'calls') }}
    {%- if files_to_load is not none %}
    where {{ raw_relative_path('filename', 'calls') }} in ({{ files_to_load }})
    {%- endif %}
),

files_read as (
    select {{ raw_relative_path('file', 'calls') }} as source_file
    from {{ raw_files('calls') }}
    {%- if files_to_load is not none %}
    where {{ raw_relative_path('file', 'calls') }} in ({{ files_to_load }})
    {%- endif %}
),

renamed as (
    select
        cast(id as string) as call_id,
        cast(organization_id as string) as organization_id,
        cast(agent_id as string) as agent_id,
        cast(started_at as {{ type_timestamptz() }}) as started_at,
        cast(ended_at as {{ type_timestamptz() }}) as ended_at,
        {{ clean_code('outcome') }} as outcome_code,
        cast(transferred_at as {{ type_timestamptz() }}) as transferred_at,
        {{ clean_code('sentiment') }} as sentiment,
        cast(user_corrections as bigint) as user_corrections,
        {{ normalise_reason('escalation_reason') }} as escalation_reason,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        false as is_file_marker,
        source_file as _source_file
    from source_rows
),

-- A file read that held no row at all is remembered by a marker row.
file_markers as (
    select
        cast(null as string) as call_id,
        cast(null as string) as organization_id,
        cast(null as string) as agent_id,
        cast(null as {{ type_timestamptz() }}) as started_at,
        cast(null as {{ type_timestamptz() }}) as ended_at,
        cast(null as string) as outcome_code,
        cast(null as {{ type_timestamptz() }}) as transferred_at,
        cast(null as string) as sentiment,
        cast(null as bigint) as user_corrections,
        cast(null as string) as escalation_reason,
        cast(null as {{ type_timestamptz() }}) as updated_at,
        true as is_file_marker,
        files_read.source_file as _source_file
    from files_read
    anti join source_rows
        on files_read.source_file = source_rows.source_file
),

all_rows as (
    select * from renamed
    union all
    select * from file_markers
)

select
    {{- call_version_columns() }},
    is_file_marker,
    _source_file,
    {{ load_time() }} as _loaded_at
from all_rows
