{#- Spark only (DuckDB keeps the dbt snapshot snapshots/snp_platform__agents.yml, which plain
    Parquet tables cannot hold: a snapshot updates rows in place). The append-only history of
    every agent version the warehouse has seen: a run appends the agents of the latest extract
    whose name, status, raw status or organization differ from their last recorded version (or
    that were never seen), stamped with the run's load time. Never rebuilt (full_refresh=false):
    like the snapshot, it is the only memory of a deleted agent's name. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='fail',
    )
}}

with current_agents as (
    select
        {{- agent_version_columns() }}
    from {{ ref('stg_platform__agents') }}
),

{% if is_incremental() -%}
last_recorded as (
    select
        agent_id,
        organization_id,
        agent_name,
        status,
        raw_status
    from {{ this }}
    qualify row_number() over (partition by agent_id order by _loaded_at desc) = 1
),

changed_agents as (
    select current_agents.*
    from current_agents
    left join last_recorded
        on current_agents.agent_id = last_recorded.agent_id
    where
        last_recorded.agent_id is null
        or not (
            current_agents.agent_name is not distinct from last_recorded.agent_name
            and current_agents.status is not distinct from last_recorded.status
            and current_agents.raw_status is not distinct from last_recorded.raw_status
            and current_agents.organization_id is not distinct from last_recorded.organization_id
        )
)
{%- else -%}
changed_agents as (
    select * from current_agents
)
{%- endif %}

select
    {{- agent_version_columns() }},
    {{ load_time() }} as _loaded_at
from changed_agents
