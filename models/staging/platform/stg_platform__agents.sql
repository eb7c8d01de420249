{#- One row per agent of the latest extract, status normalised. Rows without an id are left out
    (counted in dq_left_out_rows); should an id appear twice, the greatest updated_at wins, then
    the last file (by path). -#}
with source_rows as (
    select
        id,
        organization_id,
        name,
        status,
        created_at,
        updated_at,
        filename
    from {{ source('platform', 'agents') }}
),

renamed as (
    select
        cast(id as string) as agent_id,
        cast(organization_id as string) as organization_id,
        {{ clean_text('name') }} as agent_name,
        cast(status as string) as raw_status,
        {{ clean_code('status') }} as cleaned_status,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at,
        {{ raw_relative_path('filename', 'agents') }} as _source_file
    from source_rows
    where id is not null
),

one_row_per_agent as (
    select *
    from renamed
    qualify row_number() over (
            partition by agent_id order by updated_at desc nulls last, _source_file desc
        ) = 1
)

select
    agent_id,
    organization_id,
    agent_name,
    case
        when cleaned_status in ('active', 'inactive', 'cancelled', 'pending') then cleaned_status
        else 'inactive'
    end as status,
    coalesce(cleaned_status in ('active', 'inactive', 'cancelled', 'pending'), false) as is_known_status,
    raw_status,
    created_at,
    updated_at,
    _source_file
from one_row_per_agent
