{{ config(meta={'dagster': {'ref': {'name': 'stg_platform__calls'}}}) }}
-- meta.dagster.ref: the test reads the raw calls too; Dagster shows it as a check of
-- staging/stg_platform__calls.
-- Raw call rows sharing an id and an updated_at must be identical copies (raw-sources.md), so
-- that any one of them is the call. Returns every version held in stg_platform__calls whose raw
-- rows differ in a contract column: the extract is corrupt and which row is the call cannot be
-- told. Identical copies (ordinary dirt) and differing copies of superseded versions pass.
with copied_versions as (
    select
        id,
        updated_at
    from {{ source('platform', 'calls') }}
    where id is not null and updated_at is not null
    group by id, updated_at
    having count(*) > 1
),

held_copied_versions as (
    select
        copied_versions.id,
        copied_versions.updated_at
    from copied_versions
    semi join {{ ref('stg_platform__calls') }} as held
        on
            copied_versions.id = held.call_id
            and copied_versions.updated_at = held.updated_at
),

copies as (
    select
        raw_calls.id,
        raw_calls.updated_at,
        struct_pack(
            raw_calls.organization_id,
            raw_calls.agent_id,
            raw_calls.started_at,
            raw_calls.ended_at,
            raw_calls.outcome,
            raw_calls.transferred_at,
            raw_calls.sentiment,
            raw_calls.user_corrections,
            raw_calls.escalation_reason
        ) as contract_columns
    from {{ source('platform', 'calls') }} as raw_calls
    semi join held_copied_versions
        on
            raw_calls.id = held_copied_versions.id
            and raw_calls.updated_at = held_copied_versions.updated_at
)

select
    id as call_id,
    updated_at,
    count(*) as raw_rows,
    count(distinct contract_columns) as distinct_rows
from copies
group by id, updated_at
having count(distinct contract_columns) > 1
