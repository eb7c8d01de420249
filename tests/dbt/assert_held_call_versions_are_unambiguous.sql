{{ config(meta={'dagster': {'ref': {'name': 'stg_platform__calls'}}}) }}
-- meta.dagster.ref: the test reads the change log too; Dagster shows it as a check of
-- staging/stg_platform__calls.
-- Raw call rows sharing an id and an updated_at must be identical copies (raw-sources.md), so
-- that any one of them is the call. Returns every version held in stg_platform__calls whose
-- delivered rows (stg_platform__call_versions, as cleaned there) differ in a contract column:
-- the extract is corrupt and which row is the call cannot be told. Identical copies (ordinary
-- dirt) and differing copies of superseded versions pass. Only versions with a row loaded by
-- this dbt invocation can have become ambiguous since the build before checked (in a full build,
-- that is every version), so only they are read.
with versions as (
    select
        call_id,
        updated_at,
        {{ row_value([
            'organization_id',
            'agent_id',
            'started_at',
            'ended_at',
            'outcome_code',
            'transferred_at',
            'sentiment',
            'user_corrections',
            'escalation_reason',
        ]) }} as contract_columns,
        _loaded_at
    from {{ ref('stg_platform__call_versions') }}
    where call_id is not null and updated_at is not null
),

latest_versions as (
    select distinct
        call_id,
        updated_at
    from versions
    where _loaded_at = {{ load_time() }}
),

held_latest_versions as (
    select
        latest_versions.call_id,
        latest_versions.updated_at
    from latest_versions
    semi join {{ ref('stg_platform__calls') }} as held
        on
            latest_versions.call_id = held.call_id
            and latest_versions.updated_at = held.updated_at
)

select
    versions.call_id,
    versions.updated_at,
    count(*) as delivered_rows,
    count(distinct versions.contract_columns) as distinct_rows
from versions
semi join held_latest_versions
    on
        versions.call_id = held_latest_versions.call_id
        and versions.updated_at = held_latest_versions.updated_at
group by versions.call_id, versions.updated_at
having count(distinct versions.contract_columns) > 1
