{#- One row per known reseller: every reseller of the latest extract, plus every reseller id
    that an organization names but the extract lacks (name and creation time unknown). -#}
with extract_resellers as (
    select
        reseller_id,
        reseller_name,
        created_at
    from {{ ref('stg_platform__resellers') }}
),

resellers_named_by_organizations as (
    select distinct reseller_id
    from {{ ref('dim_organizations') }}
    where reseller_id is not null
),

organizations_only_resellers as (
    select
        resellers_named_by_organizations.reseller_id,
        cast(null as string) as reseller_name,
        cast(null as {{ type_timestamptz() }}) as created_at
    from resellers_named_by_organizations
    anti join extract_resellers
        on resellers_named_by_organizations.reseller_id = extract_resellers.reseller_id
),

known_resellers as (
    select
        *,
        true as in_latest_extract
    from extract_resellers
    union all
    select
        *,
        false as in_latest_extract
    from organizations_only_resellers
)

select
    reseller_id,
    reseller_name,
    created_at,
    in_latest_extract
from known_resellers
