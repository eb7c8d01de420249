{#- One row per known agent: every agent the agents snapshot ever saw, and every agent id on a
    counted call. An agent missing from the latest extract is `deleted` and keeps the last name
    the snapshot saw; an id never seen is "Unknown agent", `deleted`. -#}
with snapshot_versions as (
    select
        agent_id,
        organization_id,
        agent_name,
        status,
        raw_status,
        dbt_valid_from,
        dbt_valid_to,
        coalesce(cast(dbt_is_deleted as string) = 'True', false) as is_deletion_record
    from {{ ref('snp_platform__agents') }}
),

current_agents as (
    select
        agent_id,
        organization_id,
        agent_name,
        status,
        raw_status
    from snapshot_versions
    where dbt_valid_to is null and not is_deletion_record
),

last_seen_versions as (
    select
        agent_id,
        organization_id,
        agent_name,
        raw_status
    from snapshot_versions
    where not is_deletion_record
    qualify row_number() over (partition by agent_id order by dbt_valid_from desc) = 1
),

deleted_agents as (
    select
        last_seen_versions.agent_id,
        last_seen_versions.organization_id,
        last_seen_versions.agent_name,
        'deleted' as status,
        last_seen_versions.raw_status
    from last_seen_versions
    anti join current_agents
        on last_seen_versions.agent_id = current_agents.agent_id
),

agents_on_calls as (
    select distinct agent_id
    from {{ ref('fct_calls') }}
    where agent_id is not null
),

never_seen_agents as (
    select
        agents_on_calls.agent_id,
        cast(null as string) as organization_id,
        'Unknown agent' as agent_name,
        'deleted' as status,
        cast(null as string) as raw_status
    from agents_on_calls
    anti join last_seen_versions
        on agents_on_calls.agent_id = last_seen_versions.agent_id
),

known_agents as (
    select * from current_agents
    union all
    select * from deleted_agents
    union all
    select * from never_seen_agents
)

select
    agent_id,
    organization_id,
    coalesce(agent_name, 'Unknown agent') as agent_name,
    status,
    status = 'deleted' as is_deleted,
    raw_status
from known_agents
