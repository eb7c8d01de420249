{#- Spark only: the agents' history in the columns of the DuckDB snapshot of the same name
    (snapshots/snp_platform__agents.yml, check strategy, hard_deletes new_record), read from
    the append-only agent_versions_seen: each version is valid from its load until the next
    version's load, and an agent missing from the latest extract ends in a deletion record
    (dbt_is_deleted 'True') valid from this run. dim_agents reads it as it reads the snapshot. -#}
{{ config(materialized='view') }}

with versions as (
    select
        {{- agent_version_columns() }},
        _loaded_at as dbt_valid_from,
        lead(_loaded_at) over (partition by agent_id order by _loaded_at) as next_valid_from
    from {{ ref('agent_versions_seen') }}
),

current_agents as (
    select agent_id
    from {{ ref('stg_platform__agents') }}
),

latest_versions as (
    select *
    from versions
    where next_valid_from is null
),

recorded_versions as (
    select
        {{- agent_version_columns('versions') }},
        versions.dbt_valid_from,
        case
            when versions.next_valid_from is not null then versions.next_valid_from
            when current_agents.agent_id is null then {{ load_time() }}
        end as dbt_valid_to,
        'False' as dbt_is_deleted
    from versions
    left join current_agents
        on versions.agent_id = current_agents.agent_id
),

deletion_records as (
    select
        {{- agent_version_columns('latest_versions') }},
        {{ load_time() }} as dbt_valid_from,
        cast(null as {{ type_timestamptz() }}) as dbt_valid_to,
        'True' as dbt_is_deleted
    from latest_versions
    anti join current_agents
        on latest_versions.agent_id = current_agents.agent_id
),

all_versions as (
    select * from recorded_versions
    union all
    select * from deletion_records
)

select
    {{- agent_version_columns() }},
    dbt_valid_from,
    dbt_valid_to,
    dbt_is_deleted
from all_versions
