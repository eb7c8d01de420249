{#- One row per known organization: every organization of the latest extract, plus every
    organization id that only a valid call names (name and creation time unknown). -#}
with extract_organizations as (
    select
        organization_id,
        organization_name,
        reseller_id,
        timezone,
        created_at
    from {{ ref('stg_platform__organizations') }}
),

organizations_named_by_calls as (
    select distinct organization_id
    from {{ ref('int_calls') }}
    where is_valid
),

calls_only_organizations as (
    select
        organizations_named_by_calls.organization_id,
        cast(null as string) as organization_name,
        cast(null as string) as reseller_id,
        'UTC' as timezone,
        cast(null as {{ type_timestamptz() }}) as created_at
    from organizations_named_by_calls
    anti join extract_organizations
        on organizations_named_by_calls.organization_id = extract_organizations.organization_id
),

known_organizations as (
    select
        *,
        true as in_latest_extract
    from extract_organizations
    union all
    select
        *,
        false as in_latest_extract
    from calls_only_organizations
)

select
    organization_id,
    organization_name,
    reseller_id,
    timezone,
    created_at,
    in_latest_extract
from known_organizations
