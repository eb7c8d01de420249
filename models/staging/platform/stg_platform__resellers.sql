{#- One row per reseller of the latest extract. Rows without an id are left out (counted in
    dq_left_out_rows); should an id appear twice, the row of the last file (by path) wins. -#}
with source_rows as (
    select
        id,
        name,
        created_at,
        filename
    from {{ source('platform', 'resellers') }}
),

renamed as (
    select
        cast(id as string) as reseller_id,
        {{ clean_text('name') }} as reseller_name,
        cast(created_at as {{ type_timestamptz() }}) as created_at,
        {{ raw_relative_path('filename', 'resellers') }} as _source_file
    from source_rows
    where id is not null
),

one_row_per_reseller as (
    select *
    from renamed
    qualify row_number() over (partition by reseller_id order by _source_file desc) = 1
)

select
    reseller_id,
    reseller_name,
    created_at,
    _source_file
from one_row_per_reseller
