{#- One row per organization of the latest extract. Rows without an id are left out (counted in
    dq_left_out_rows); should an id appear twice, the row of the last file (by path) wins. -#}
with source_rows as (
    select
        id,
        name,
        reseller_id,
        timezone,
        created_at,
        filename
    from {{ source('platform', 'organizations') }}
),

renamed as (
    select
        cast(id as string) as organization_id,
        {{ clean_text('name') }} as organization_name,
        cast(reseller_id as string) as reseller_id,
        coalesce({{ clean_text('timezone') }}, 'UTC') as timezone,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        {{ raw_relative_path('filename', 'organizations') }} as _source_file
    from source_rows
    where id is not null
),

one_row_per_organization as (
    select *
    from renamed
    qualify row_number() over (partition by organization_id order by _source_file desc) = 1
)

select
    organization_id,
    organization_name,
    reseller_id,
    timezone,
    created_at,
    _source_file
from one_row_per_organization
