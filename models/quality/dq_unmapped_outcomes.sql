{#- Outcome codes of counted calls that the seed outcome_categories does not map (so they are
    category `other`): one row per code, null standing for a null or blank outcome. -#}
select
    outcome_code,
    cast(count(*) as bigint) as call_count,
    min(started_at) as first_started_at,
    max(started_at) as last_started_at
from {{ ref('int_calls') }}
where is_counted and not is_mapped_outcome
group by outcome_code
